"""Each new layout, made by the project's own makers (``medagent synth xray|seg2d|itk``), inspected and solved by
``medagent run`` with a plain request: the quality bar met on held-out data and the refined notebook re-run.
Training is shortened (epochs, steps) so that each run stays within minutes on a shared 2-core machine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def medagent(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def _notebook(path):
    notebook = json.loads(path.read_text())
    return notebook, "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")


def test_inspect_reads_each_new_layout(tmp_path):
    for args, layout in ((("xray", "--per-class", 6, "--pitfalls", "leakage"), "class folders"),
                         (("seg2d", "--style", "busi", "--cases", 8, "--pitfalls", "mask_size,unreadable"), "masks"),
                         (("itk", "--style", "slicer", "--cases", 3, "--size", 32), "3D Slicer")):
        out = tmp_path / args[0]
        made = medagent("synth", args[0], out, *args[1:])
        assert made.returncode == 0, made.stderr
        result = medagent("inspect", out, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert layout in report["card"]["layout"]
        kinds = {f["kind"] for f in report["findings"]}
        if args[0] == "xray":
            assert "leakage" in kinds and report["card"]["classes"] == ["NORMAL", "PNEUMONIA"]
        if args[0] == "seg2d":  # the damaged cases are findings that name their files
            messages = " ".join(f["message"] for f in report["findings"])
            assert {"unreadable", "geometry_mismatch"} <= kinds and "_mask.png" in messages and ".png" in messages
        if args[0] == "itk":
            assert report["card"]["label_names"] == {"1": "tumor"} and report["card"]["n_cases"] == 3


@pytest.mark.slow
def test_chest_xray_classification_end_to_end(tmp_path):
    data = tmp_path / "chest_xray"
    assert medagent("synth", "xray", data, "--per-class", 10, "--pitfalls", "leakage,small_validation").returncode == 0
    result = medagent("run", "Train a model to detect pneumonia in these chest X-rays.", "--data", data,
                      "--out", tmp_path / "nb.ipynb", "--json", "--backend", "offline:epochs=20")
    summary = json.loads(result.stdout)
    assert result.returncode == 0, summary["reason"]
    assert summary["reexecuted_ok"] is True and summary["metrics"]["balanced_accuracy"] >= 0.85
    assert "auroc" in summary["metrics"]
    notebook, code = _notebook(tmp_path / "nb.ipynb")
    assert notebook["metadata"]["medagent"]["plan"]["recipe"] == "classification_2d"
    assert "DenseNet" in code and "split_pictures" in code and "resplit_validation=True" in code
    fixed = {(f["case"], f["finding"]) for f in notebook["metadata"]["medagent"]["findings_fixed"]}
    assert {k for _, k in fixed} == {"leakage"}


@pytest.mark.slow
@pytest.mark.parametrize("style", ["kvasir", "busi"])
def test_2d_segmentation_end_to_end(tmp_path, style):
    data = tmp_path / style
    assert medagent("synth", "seg2d", data, "--style", style, "--cases", 20).returncode == 0
    result = medagent("run", "Segment the lesions in these images.", "--data", data, "--out", tmp_path / "nb.ipynb",
                      "--json", "--backend", "offline:steps=200", timeout=1800)
    summary = json.loads(result.stdout)
    assert result.returncode == 0, summary["reason"]
    assert summary["reexecuted_ok"] is True and summary["metrics"]["dice_mean"] >= 0.8
    notebook, code = _notebook(tmp_path / "nb.ipynb")
    assert notebook["metadata"]["medagent"]["plan"]["recipe"] == "segmentation_2d"
    assert f"IN_CHANNELS = {3 if style == 'kvasir' else 1}" in code and "(px)" in code


@pytest.mark.slow
def test_slicer_export_segmentation_end_to_end(tmp_path):
    data = tmp_path / "slicer"
    assert medagent("synth", "itk", data, "--style", "slicer", "--cases", 8, "--size", 48).returncode == 0
    result = medagent("run", "Segment the tumors in these scans.", "--data", data, "--out", tmp_path / "nb.ipynb",
                      "--json", "--backend", "offline:steps=300")
    summary = json.loads(result.stdout)
    assert result.returncode == 0, summary["reason"]
    assert summary["reexecuted_ok"] is True and summary["metrics"]["dice_mean"] >= 0.8
    notebook, _ = _notebook(tmp_path / "nb.ipynb")
    assert "tumor" in json.dumps(notebook["metadata"]["medagent"]["plan"]["structures"])


@pytest.mark.parametrize("maker, request_text, recipe", [
    (("xray", "--per-class", 6), "Train a model to detect pneumonia in these chest X-rays.", "classification_2d"),
    (("nih", "--patients", 8), "Classify the findings in these chest X-rays.", "multilabel_2d"),
    (("medmnist", "--per-class", 6), "Classify these images.", "classification_2d"),
    (("seg2d", "--style", "kvasir", "--cases", 6), "Segment the polyps in these endoscopy images.", "segmentation_2d"),
    (("itk", "--style", "slicer", "--cases", 3, "--size", 32), "Segment the tumors in these scans.", "segmentation_2d"),
])
def test_plans_for_2d_data_choose_their_recipe_and_their_code_compiles(tmp_path, maker, request_text, recipe):
    from jupyter_medagent.imaging import build_data_card
    from jupyter_medagent.judge.quantitative import check_dataset
    from jupyter_medagent.plan.compute import compute_fingerprint
    from jupyter_medagent.plan.intent import parse_request
    from jupyter_medagent.plan import make_plan

    assert medagent("synth", maker[0], tmp_path / "data", *maker[1:]).returncode == 0
    card = build_data_card(tmp_path / "data")
    findings = [f.to_dict() for f in check_dataset(card)]
    plan = make_plan(card.to_dict(), parse_request(request_text), compute_fingerprint(), data_dir=str(tmp_path / "data"),
                     findings=findings)
    assert plan.recipe == recipe
    if maker[0] == "itk":  # the structure is named by the .seg.nrrd header; thick slices (2.5 mm): 2D
        assert plan.structures == {1: "tumor"}
    if maker[0] == "seg2d":
        assert "IN_CHANNELS = 3" in plan.source(plan.step("normalise")) and "(px)" in plan.source(plan.step("evaluate"))
    for step in plan.steps:
        if step.tool == "cell":
            compile(plan.source(step), step.name, "exec")  # every template filled in, valid Python


@pytest.mark.slow
def test_multilabel_findings_end_to_end(tmp_path):
    data = tmp_path / "nih"
    assert medagent("synth", "nih", data, "--patients", 30).returncode == 0
    result = medagent("run", "Classify the findings in these chest X-rays.", "--data", data, "--out",
                      tmp_path / "nb.ipynb", "--json", "--backend", "offline:epochs=20")
    summary = json.loads(result.stdout)
    assert result.returncode == 0, summary["reason"]
    assert summary["reexecuted_ok"] is True and summary["metrics"]["auroc_mean"] >= 0.8
    assert {"auroc_Effusion", "auroc_Nodule"} <= set(summary["metrics"])
