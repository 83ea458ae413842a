import json
import subprocess
import sys

import pytest

from jupyter_medagent.agent.protocols import AgentView, Observation
from jupyter_medagent.backends import make_backend
from jupyter_medagent.backends.offline.intent import parse_request
from jupyter_medagent.backends.offline.planner import PlanFailed, Planner, Settings, choose_recipe, match_rule
from jupyter_medagent.errors import ConfigError

EXPERT = ("Segment the LV cavity, LV myocardium and RV cavity on the ED and ES frames of these short-axis cine "
          "stacks with a patient-level split, report Dice and HD95 on held-out patients, and the LV ejection fraction.")
ORDINARY = "Segment the left ventricle, myocardium and right ventricle in these cine MRIs and give me the ejection fraction."
VAGUE = "analyse these heart scans"

CARDIAC_CARD = {"n_cases": 40, "n_labelled": 40, "label_values": [0, 1, 2, 3], "anisotropy": 5.6}


@pytest.mark.parametrize("request_text", [EXPERT, ORDINARY, VAGUE])
def test_three_wordings_reach_the_cardiac_recipe(request_text):
    intent = parse_request(request_text)
    recipe = choose_recipe(intent, CARDIAC_CARD, "acdc")
    assert recipe.structures == {1: "RV", 2: "MYO", 3: "LV"}
    assert "ef" in recipe.measures or request_text == VAGUE and recipe.kind == "measurement"


def test_vague_cardiac_request_reads_as_the_standard_cine_analysis():
    intent = parse_request(VAGUE)
    assert intent.cardiac and intent.structures == ["LV", "MYO", "RV"]


def test_convention_comes_from_the_data_not_habit():
    recipe = choose_recipe(parse_request(ORDINARY), CARDIAC_CARD, "mnms")
    assert recipe.structures == {1: "LV", 2: "MYO", 3: "RV"}


def test_thick_slices_give_2d_and_the_reason_says_why():
    recipe = choose_recipe(parse_request(ORDINARY), CARDIAC_CARD, "acdc")
    assert recipe.kind == "segmentation_2d" and "5.6x longer across slices" in recipe.reasons[0]
    iso = choose_recipe(parse_request("segment the spheres"), {**CARDIAC_CARD, "label_values": [0, 1], "anisotropy": 1.0}, None)
    assert iso.kind == "segmentation_2d" and "3D network" in iso.reasons[0]
    assert iso.structures == {1: "object"}


def test_measurement_only_when_asked_to_use_the_given_labels():
    recipe = choose_recipe(parse_request("Compute the ejection fraction from the given labels"), CARDIAC_CARD, "acdc")
    assert recipe.kind == "measurement" and recipe.measures == ["ef"]


@pytest.mark.parametrize("request_text, card, message", [
    ("what is in here?", {**CARDIAC_CARD, "label_values": [0, 1]}, "could not tell what to segment"),
    (ORDINARY, {**CARDIAC_CARD, "n_labelled": 0, "label_values": []}, "no label maps"),
    ("classify these scans as normal or abnormal", CARDIAC_CARD, "needs the class of each scan"),
])
def test_missing_information_fails_with_a_clear_message(request_text, card, message):
    with pytest.raises(PlanFailed, match=message):
        choose_recipe(parse_request(request_text), card, None)


def test_repair_rules_are_keyed_on_the_error():
    assert match_rule({"ename": "RuntimeError", "evalue": "DefaultCPUAllocator: can't allocate memory"})["action"] == "halve_batch"
    assert match_rule({"ename": "RuntimeError", "evalue": "Sizes of tensors must match except in dimension 1"})["action"] == "pad_to_32"
    assert match_rule({"ename": "ModuleNotFoundError", "evalue": "No module named 'monai'"})["action"] == "give_up"
    assert match_rule({"ename": "ZeroDivisionError", "evalue": "division by zero"}) is None


def _view(task="segment the LV, myocardium and RV and report EF", data_dir="/data"):
    return AgentView(task, data_dir, [], "", [], [], 0, 80)


def _drive(planner, observations):
    """Feed observations to the planner; returns the tool calls it made."""
    steps = planner.steps()
    calls = [next(steps)[1]]
    for obs in observations:
        calls.append(steps.send(obs)[1])
    return calls


def _cell_ok(cell_id, **data):
    return Observation("ran", data={"cell_id": cell_id, "ok": True, **data})


def test_findings_become_explicit_fixes_and_errors_fire_repair_rules():
    repairs, fixes = [], []
    planner = Planner(_view(), Settings(), repairs, fixes)
    findings = [
        {"case": "p1_ED", "kind": "orientation_flip", "severity": "error", "message": "m", "evidence": {"flip_axis": 1, "fit_given": 0.1}},
        {"case": "p2_ES", "kind": "label_convention", "severity": "error", "message": "m", "evidence": {"mapping": {"1": 3, "2": 2, "3": 1}}},
        {"case": "p3_ED", "kind": "fragmented", "severity": "warning", "message": "m", "evidence": {}},
        {"case": "labelsTr/x.nii.gz", "kind": "unreadable", "severity": "warning", "message": "m", "evidence": {}},
    ]
    inspect = Observation("card", data={"card": CARDIAC_CARD, "findings": findings, "label_convention": "acdc"})
    oom = Observation("failed", data={"cell_id": "c8", "ok": False,
                                      "error": {"ename": "RuntimeError", "evalue": "DefaultCPUAllocator: can't allocate memory"}},
                      is_error=True)
    calls = _drive(planner, [inspect, _cell_ok("c1"), _cell_ok("c2"), _cell_ok("c3"),
                             Observation("v", data={"verdict": "flag", "findings": findings}), _cell_ok("c4"),
                             _cell_ok("c5"), Observation("v", data={"verdict": "ok", "findings": []}),
                             _cell_ok("c6"), _cell_ok("c7"), oom, _cell_ok("c7")])
    fix_cell = next(c for c in calls if c.name == "add_cell" and "fixes = [" in c.arguments["source"])
    source = fix_cell.arguments["source"]
    assert "('p1_ED', 'orientation_flip', {'flip_axis': 1})" in source
    assert "('p2_ES', 'label_convention', {'mapping': {'1': 3, '2': 2, '3': 1}})" in source
    assert "('p3_ED', 'exclude', {})" in source and "x.nii.gz" not in source
    # The batch size lives in the data-loader cell: it is re-run first, then training is retried.
    assert calls[-2].name == "edit_cell" and calls[-2].arguments["cell_id"] == "c7"
    assert "batch_size=8" in calls[-2].arguments["source"]
    assert calls[-1].name == "edit_cell" and calls[-1].arguments["cell_id"] == "c8"
    assert repairs[-1]["rule"] == "out_of_memory"
    assert [f["finding"] for f in fixes] == ["orientation_flip", "label_convention", "fragmented"]


def test_no_data_folder_fails_clearly():
    calls = _drive(Planner(_view(data_dir=None), Settings(), [], []), [])
    assert calls[0].name == "finish" and "no data folder" in calls[0].arguments["summary"]


def test_backend_selector():
    backend = make_backend("offline:steps=10,batch_size=4")
    assert backend.settings.steps == 10 and backend.settings.batch_size == 4
    with pytest.raises(ConfigError, match="unknown backend"):
        make_backend("gpt-5")
    with pytest.raises(ConfigError, match="unknown offline backend option"):
        make_backend("offline:wings=2")


@pytest.mark.slow
def test_demo_end_to_end_meets_the_bar(tmp_path):
    """The README's main job: synthetic cardiac data with every pitfall, solved offline and verified."""
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", "demo", "--out", str(tmp_path), "--json"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["status"] == "solved" and summary["reexecuted_ok"] is True
    assert summary["dice_mean"] >= 0.90 and min(summary["dice"].values()) >= 0.85
    assert summary["ef_abs_error"] <= 3.0 and summary["demo"]["ef_abs_error_vs_truth"] <= 3.0
    assert summary["demo"]["pitfalls_handled"] == summary["demo"]["pitfalls_planted"] == 14
    notebook = json.loads((tmp_path / "cardiac_demo.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in notebook["cells"])
    assert "label flipped back onto the anatomy" in json.dumps(notebook)  # the fix table, in plain words
    assert "patient-level" in text or "Split by patient" in text
    assert notebook["metadata"]["medagent"]["status"] == "solved"


def test_class_folders_give_the_classification_recipe():
    card = {"n_cases": 80, "n_labelled": 0, "label_values": [], "anisotropy": 1.0, "classes": ["lesion", "normal"]}
    recipe = choose_recipe(parse_request("Classify these scans: which show a lesion?"), card, None)
    assert recipe.kind == "classification" and recipe.structures == {0: "lesion", 1: "normal"}


@pytest.mark.slow
def test_classification_end_to_end(tmp_path):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[2] / "benchmarks"))
    from tasks import write_lesions

    data = write_lesions(tmp_path / "lesions", cases_per_class=24)
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", "run", "Classify these scans: which show a lesion?",
                             "--data", str(data), "--out", str(tmp_path / "nb.ipynb"), "--json",
                             "--accept", "balanced_accuracy>=0.85"], capture_output=True, text=True, timeout=600)
    summary = json.loads(result.stdout)
    assert result.returncode == 0, summary["reason"]
    assert summary["reexecuted_ok"] is True and summary["metrics"]["balanced_accuracy"] >= 0.85


def test_repairs_reach_the_event_stream(tmp_path):
    """A repair rule that fires shows up as a Repair event, not only in the planner's log."""
    from jupyter_medagent.agent.loop import Agent
    from jupyter_medagent.agent.task import Task
    from jupyter_medagent.backends.offline import OfflineBackend

    class OneError:
        """An executor whose first cell runs out of memory, like a too-large batch would."""

        def __init__(self):
            self.calls = 0

        def execute(self, code, timeout=None):
            from jupyter_medagent.agent.protocols import ExecutionResult

            self.calls += 1
            if "model = UNet" in code and self.calls < 20:
                error = {"ename": "RuntimeError", "evalue": "DefaultCPUAllocator: can't allocate memory", "traceback": []}
                return ExecutionResult([{"output_type": "error", **error}], error, 0.1)
            return ExecutionResult([], None, 0.0)

        def interrupt(self):
            pass

        def close(self):
            pass

    from jupyter_medagent.imaging.phantom import synth_cardiac

    synth_cardiac(tmp_path / "data", cases=3, seed=0)
    agent = Agent(Task(ORDINARY, str(tmp_path / "data"), str(tmp_path)), OfflineBackend(), OneError(),
                  notebook_path=tmp_path / "nb.ipynb", reexecute=False)
    events = list(agent.run())
    repairs = [e for e in events if e.kind == "repair"]
    assert repairs and repairs[0].rule == "out_of_memory" and "halve" in repairs[0].reason
