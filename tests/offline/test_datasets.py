"""The demo's request on the same patients laid out as ACDC, M&Ms and the Decathlon lay them out, run through
the CLI as a user would: solved in every layout, and in ACDC's the unlabelled test patients get their
ejection fraction from the LV volume curve of their cine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from jupyter_medagent.cli.run import DEMO_REQUEST
from jupyter_medagent.synth.replicas import synth_cardiac


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["acdc", "mnms", "msd"])
def test_the_cardiac_request_is_solved_in_every_download_layout(tmp_path, layout):
    data = tmp_path / "data"
    manifest = synth_cardiac(data, cases=14, seed=12, layout=layout, test_cases=2 if layout == "acdc" else 0, frames=10)
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", "run", DEMO_REQUEST, "--data", "data",
                             "--out", "analysis.ipynb", "--json"], capture_output=True, text=True, timeout=900,
                            cwd=tmp_path)
    assert result.stdout, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert result.returncode == 0, summary["reason"]
    assert summary["status"] == "solved" and summary["reexecuted_ok"] is True
    assert summary["dice_mean"] >= 0.90 and summary["ef_abs_error"] <= 3.0
    truth = {p: v["lv_ef_percent"] for p, v in manifest["patients"].items()}
    predicted = summary["metrics"]["ef_predicted"]
    held_out = [p for p, v in manifest["patients"].items() if v["split"] == "training" and p in predicted]
    assert held_out and all(abs(predicted[p] - truth[p]) <= 3.0 for p in held_out), (predicted, truth)
    assert summary["metrics"]["patients_reported"] == len(manifest["patients"])  # every patient, not only held-out
    plan = json.loads((tmp_path / "analysis.ipynb").read_text())["metadata"]["medagent"]["plan"]
    assert plan["convention"] == ("mnms" if layout == "mnms" else "acdc")
    if layout == "acdc":
        unlabelled = [p for p, v in manifest["patients"].items() if v["split"] == "testing"]
        assert [s["name"] for s in plan["steps"] if s["name"] == "cine_curves"]
        assert all(abs(predicted[p] - truth[p]) <= 5.0 for p in unlabelled), (predicted, truth)
