"""`medagent mcp` as an MCP client meets it: a subprocess spoken to over stdio with the MCP SDK's own client."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from PIL import Image  # noqa: E402

from jupyter_medagent.synth.replicas import synth_cardiac  # noqa: E402

MEDAGENT = str(Path(sys.executable).with_name("medagent"))
TOOLS = {"inspect_data", "check_pair", "render", "propose_plan", "toolkit_reference", "solve"}


def talk(allowed: Path, *calls: tuple[str, dict], timeout: float = 60.0):
    """Start `medagent mcp --allow ALLOWED`, list its tools, make ``calls`` in order: (tools, [results])."""
    async def session():
        params = StdioServerParameters(command=MEDAGENT, args=["mcp", "--allow", str(allowed)], cwd=str(allowed),
                                       env={**os.environ})
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            listed = (await client.list_tools()).tools
            results = [await asyncio.wait_for(client.call_tool(name, arguments), timeout) for name, arguments in calls]
            return {t.name: t for t in listed}, results

    return asyncio.run(session())


def texts(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


@pytest.fixture
def cine(tmp_path):
    synth_cardiac(tmp_path / "cine", cases=2, seed=1, pitfalls=["orientation_flip"])
    return tmp_path / "cine"


def test_tools_are_listed_with_their_schemas_and_a_planted_pitfall_is_found(tmp_path, cine):
    tools, [inspected] = talk(tmp_path, ("inspect_data", {"folder": "cine"}))
    assert set(tools) == TOOLS
    render = tools["render"]
    assert render.inputSchema["required"] == ["image"]
    assert {"image", "label", "prediction", "title", "max_width"} <= set(render.inputSchema["properties"])
    assert render.inputSchema["properties"]["max_width"]["type"] == "integer"
    assert tools["solve"].inputSchema["required"] == ["request", "folder"]
    assert "contours" in render.description and "quality findings" in tools["inspect_data"].description

    assert not inspected.isError
    said = texts(inspected)
    assert "orientation_flip" in said and "Quality findings:" in said
    data = json.loads(inspected.content[1].text)  # the same facts as JSON
    assert any(f["kind"] == "orientation_flip" for f in data["findings"])
    assert len(data["card"]["cases"]) >= 2


def test_render_answers_an_image_of_the_size_it_states(tmp_path, cine):
    image = next((cine / "imagesTr").glob("*.nii.gz"))
    label = cine / "labelsTr" / image.name.replace("_0000", "")
    _, [rendered] = talk(tmp_path, ("render", {"image": str(image), "label": str(label), "max_width": 400}))
    assert not rendered.isError, texts(rendered)
    [picture] = [c for c in rendered.content if c.type == "image"]
    assert picture.mimeType == "image/png"
    png = Image.open(io.BytesIO(base64.b64decode(picture.data)))
    stated = json.loads(rendered.content[1].text)
    assert png.size == (stated["width"], stated["height"]) and png.width <= 400
    assert f"{png.width}x{png.height} px" in texts(rendered)


def test_paths_outside_the_allowed_folders_are_refused_clearly(tmp_path, cine):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "escape").symlink_to(cine)  # a link inside that leads out
    _, [outside, linked, relative] = talk(allowed, ("inspect_data", {"folder": str(cine)}),
                                          ("inspect_data", {"folder": "escape"}),
                                          ("check_pair", {"image": "../cine/imagesTr/x.nii.gz", "label": "y.nii.gz"}))
    for refused in (outside, linked, relative):
        assert refused.isError
        assert "outside the folders medagent may use" in texts(refused) and str(allowed) in texts(refused)
    assert str(cine) in texts(outside) and "escape" in texts(linked)


@pytest.mark.slow
def test_solve_runs_the_offline_agent_and_writes_the_notebook(tmp_path, cine):
    request = "Compute the LV volumes and ejection fraction of each patient from the given labels."
    _, [solved] = talk(tmp_path, ("solve", {"request": request, "folder": "cine"}), timeout=600)
    assert not solved.isError, texts(solved)
    said = texts(solved)
    assert "Status: solved" in said and "Ejection fraction per patient" in said
    outcome = json.loads(solved.content[1].text)
    assert outcome["status"] == "solved" and outcome["notebook"] == str(tmp_path / "cine-medagent.ipynb")
    assert Path(outcome["notebook"]).exists() and f"Notebook: {outcome['notebook']}" in said


def test_patient_identifiers_never_leave(tmp_path):
    from jupyter_medagent.imaging.dicom_export import write_series
    from jupyter_medagent.synth.phantom import simulate_patient
    from jupyter_medagent.synth.replicas import cine
    from jupyter_medagent.imaging.volume import Volume

    patient = simulate_patient(3, 1)
    write_series(Volume(cine(patient)[..., 0], patient.affine), tmp_path / "scans" / "SERIES1",
                 patient_name="Doe^Jane", patient_id="MRN998877")
    _, answers = talk(tmp_path, ("inspect_data", {"folder": "scans"}),
                      ("render", {"image": "scans/SERIES1", "title": "MRN998877 Doe^Jane"}),
                      ("render", {"image": "scans/SERIES1", "title": "[redacted] [redacted]"}))
    for answer in answers:
        assert not answer.isError, texts(answer)
        said = texts(answer)
        assert not any(value in said for value in ("MRN998877", "Doe", "Jane")), said
    # The title drawn into the picture is scrubbed too: the same pixels as a title of placeholders.
    [named], [placeholders] = ([c.data for c in a.content if c.type == "image"] for a in answers[1:])
    assert named == placeholders
