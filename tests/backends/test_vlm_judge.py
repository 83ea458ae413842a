"""The VLM judge: montages go out as images with the rubrics, a structured verdict comes back and is
merged with the quantitative judge; disagreements land in the notebook's provenance."""

from __future__ import annotations

import nbformat

from jupyter_medagent.agent.loop import Agent
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.backends.anthropic_api import AnthropicBackend
from jupyter_medagent.backends.openai_api import OpenAIBackend
from jupyter_medagent.backends.pricing import PriceTable
from jupyter_medagent.judge.vlm import VLMJudge, rubric_prompt

from .conftest import PICTURE_CELL
from .wire import anthropic_reply, openai_reply

FLAGGED = {"verdict": "flag", "confidence": 0.8, "findings": [
    {"kind": "orientation_flip", "case": "patient001_ED", "severity": "error", "message": "LV drawn on the right"},
    {"kind": "looks_odd", "message": "contour wobbles"}]}


def test_vlm_flag_is_merged_and_the_disagreement_recorded(server, kernel, tmp_path):
    from tests.agent.conftest import ScriptedBackend, call

    srv = server([anthropic_reply(tool=("report", FLAGGED), usage={"input_tokens": 900, "output_tokens": 120})])
    prices = PriceTable.load({"claude-test": {"input": 3.0, "output": 15.0}})
    judge = VLMJudge(AnthropicBackend("claude-test", api_key="k", base_url=srv.url, prices=prices))
    agent_backend = ScriptedBackend([call("add_cell", source=PICTURE_CELL, note="Picture."),
                                     call("judge", context="LV overlay"),
                                     lambda view: call("finish", status="failed", summary=view.history[-1].observation.text)])
    agent = Agent(Task("check", None, str(tmp_path)), agent_backend, kernel, judges=[judge],
                  notebook_path=tmp_path / "judged.ipynb", reexecute=False)
    events = list(agent.run())

    request = srv.requests[0]
    assert request["tool_choice"] == {"type": "tool", "name": "report"}
    assert "orientation_flip" in str(request["tools"][0]["input_schema"])
    assert request["system"][0]["text"] == rubric_prompt() and "Plausibility of each structure" in rubric_prompt()
    blocks = request["messages"][0]["content"]
    assert blocks[0]["type"] == "image" and "LV overlay" in blocks[-1]["text"]
    verdicts = {e.judge: e for e in events if e.kind == "verdict"}
    assert verdicts["quantitative"].verdict == "ok" and verdicts["vlm"].verdict == "flag"
    assert verdicts["vlm"].confidence == 0.8 and verdicts["merged"].verdict == "flag"
    kinds = [f["kind"] for f in verdicts["vlm"].findings]
    assert kinds == ["orientation_flip", "implausible_anatomy"]  # an unknown kind is kept, under a known name
    assert "LV drawn on the right" in events[-1].reason  # the agent's model heard the finding
    provenance = nbformat.read(tmp_path / "judged.ipynb", 4).metadata["medagent"]
    assert provenance["judge_disagreements"] == ["vlm flagged while quantitative found nothing wrong"]
    # Judge calls are paid for and counted with the agent's own spending.
    assert provenance["tokens"] == 1020 and provenance["cost_usd"] == (900 * 3.0 + 120 * 15.0) / 1e6


def test_text_only_server_answers_the_judge_in_a_fenced_block(server):
    srv = server([openai_reply(text='Looks fine.\n```json\n{"verdict": "ok", "confidence": 0.6, "findings": []}\n```')])
    client = OpenAIBackend("llava", api_key="x", base_url=srv.url + "/v1", tools=False)
    verdict = VLMJudge(client).judge([_png()], [], "overlay")
    assert (verdict.verdict, verdict.confidence, verdict.findings) == ("ok", 0.6, [])
    assert "following this schema" in srv.requests[0]["messages"][0]["content"]


def test_a_judge_that_cannot_answer_abstains(kernel, tmp_path):
    from tests.agent.conftest import ScriptedBackend, call

    judge = VLMJudge(OpenAIBackend("llava", api_key="x", base_url="http://127.0.0.1:9/v1", max_retries=0))
    backend = ScriptedBackend([call("add_cell", source=PICTURE_CELL, note="Picture."), call("judge"),
                               lambda view: call("finish", status="failed", summary=view.history[-1].observation.text)])
    events = list(Agent(Task("x", None, str(tmp_path)), backend, kernel, judges=[judge]).run())
    assert [e.judge for e in events if e.kind == "verdict"] == ["quantitative"]
    assert "the vlm judge could not answer" in events[-1].reason


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (1200, 900), 128).save(buffer, format="PNG")
    return buffer.getvalue()
