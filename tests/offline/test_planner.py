"""The offline planner: plans from the data and machine fingerprints, recipes, repairs, and whole runs."""

import json
import subprocess
import sys

import pytest

from jupyter_medagent.agent.protocols import AgentView, Observation
from jupyter_medagent.backends import make_backend
from jupyter_medagent.backends.offline.planner import Planner, match_rule
from jupyter_medagent.contracts.errors import ConfigError
from jupyter_medagent.plan import ComputeFingerprint, PlanFailed, Preferences, make_plan, parse_request

EXPERT = ("Segment the LV cavity, LV myocardium and RV cavity on the ED and ES frames of these short-axis cine "
          "stacks with a patient-level split, report Dice and HD95 on held-out patients, and the LV ejection fraction.")
ORDINARY = "Segment the left ventricle, myocardium and right ventricle in these cine MRIs and give me the ejection fraction."
VAGUE = "analyse these heart scans"

CARDIAC_CARD = {"n_cases": 40, "n_labelled": 40, "n_patients": 20, "label_values": [0, 1, 2, 3], "anisotropy": 5.6,
                "median_shape": [128, 128, 10], "median_spacing": [1.4, 1.4, 8.0], "modality": None, "cases": []}
ISOTROPIC_CARD = {**CARDIAC_CARD, "label_values": [0, 1], "anisotropy": 1.0, "median_shape": [64, 64, 64],
                  "median_spacing": [1.0, 1.0, 1.0]}
LAPTOP = ComputeFingerprint("cpu", cpu_cores=2, ram_free_gb=20.0)
SERVER_CPU = ComputeFingerprint("cpu", cpu_cores=16, ram_free_gb=120.0)
H100 = ComputeFingerprint("cuda", cpu_cores=16, ram_free_gb=120.0, gpu_name="NVIDIA H100 80GB HBM3",
                          gpu_memory_gb=80.0, gpu_free_gb=79.0, bf16=True)
SMALL_GPU = ComputeFingerprint("cuda", cpu_cores=4, ram_free_gb=12.0, gpu_name="Tesla T4", gpu_memory_gb=16.0,
                               gpu_free_gb=4.0, bf16=False)


def plan_for(request, card=CARDIAC_CARD, compute=LAPTOP, convention="acdc", **kwargs):
    return make_plan(card, parse_request(request), compute, data_dir="/data", convention=convention, **kwargs)


# ---------------------------------------------------------------------------------------------- what to do
@pytest.mark.parametrize("request_text", [EXPERT, ORDINARY, VAGUE])
def test_three_wordings_reach_the_cardiac_segmentation_with_ef(request_text):
    plan = plan_for(request_text)
    assert plan.recipe == "segmentation_2d" and plan.anatomy == "cardiac"
    assert plan.structures == {1: "RV", 2: "MYO", 3: "LV"} and "ef" in plan.measures
    assert [s.name for s in plan.steps][-2:] == ["ejection_fraction", "clinical_measures"]


def test_vague_cardiac_request_reads_as_the_standard_cine_analysis():
    intent = parse_request(VAGUE)
    assert intent.anatomy == "cardiac" and intent.structures == ["LV", "MYO", "RV"]


def test_convention_comes_from_the_data_not_habit():
    plan = plan_for(ORDINARY, convention="mnms")
    assert plan.structures == {1: "LV", 2: "MYO", 3: "RV"} and plan.params["lv_value"] == 1


def test_measurement_only_when_asked_to_use_the_given_labels():
    plan = plan_for("Compute the ejection fraction from the given labels")
    assert plan.recipe == "measurement" and plan.measures == ["ef"] and plan.training is None
    assert [s.name for s in plan.steps][-2:] == ["volumes", "ejection_fraction"]


def test_class_folders_give_the_classification_recipe():
    card = {"n_cases": 80, "n_labelled": 0, "label_values": [], "anisotropy": 1.0, "classes": ["lesion", "normal"],
            "cases": [{"shape": [48, 48, 40]}], "median_shape": [48, 48, 40]}
    plan = plan_for("Classify these scans: which show a lesion?", card, convention=None)
    assert plan.recipe == "classification" and plan.structures == {0: "lesion", 1: "normal"}
    assert plan.quality_bar == {"balanced_accuracy": [">=", 0.85]} and plan.params["shape"] == (48, 48, 40)
    # A request that names no task: the class folders and the missing label maps say what can be done.
    assert plan_for("which of these are abnormal?", card, convention=None).recipe == "classification"
    # Asking for a segmentation of the same scans stays a segmentation request, and fails for want of labels.
    with pytest.raises(PlanFailed, match="no label maps"):
        plan_for("segment the lesions", card, convention=None)


@pytest.mark.parametrize("request_text, card, message", [
    ("what is in here?", {**CARDIAC_CARD, "label_values": [0, 1]}, "could not tell what to segment"),
    (ORDINARY, {**CARDIAC_CARD, "n_labelled": 0, "label_values": []}, "no label maps"),
    ("classify these scans as normal or abnormal", CARDIAC_CARD, "needs the class of each scan"),
])
def test_missing_information_fails_with_a_clear_message(request_text, card, message):
    with pytest.raises(PlanFailed, match=message):
        plan_for(request_text, card, convention=None)


# ---------------------------------------------------------------------------------------------- on which machine
def test_thick_slices_give_2d_whatever_the_machine():
    for compute in (LAPTOP, H100):
        plan = plan_for(ORDINARY, compute=compute)
        assert plan.recipe == "segmentation_2d" and "5.6x longer across slices" in plan.reasons[0]


def test_isotropic_data_gets_3d_on_a_gpu_and_2d_on_a_cpu():
    cpu = plan_for("segment the spheres", ISOTROPIC_CARD, LAPTOP, convention=None)
    assert cpu.recipe == "segmentation_2d" and "on a CPU a 2D network" in cpu.reasons[0]
    assert cpu.structures == {1: "object"}
    # The data set's own names for its labels (dataset.json, a DICOM SEG's segment labels) name the structures.
    named = plan_for("segment the spheres", {**ISOTROPIC_CARD, "label_names": {"1": "sphere"}}, LAPTOP, convention=None)
    assert named.structures == {1: "sphere"}
    gpu = plan_for("segment the spheres", ISOTROPIC_CARD, H100, convention=None)
    assert gpu.recipe == "segmentation_3d" and "79 GB free" in gpu.reasons[0]
    assert gpu.training.dims == 3 and gpu.training.patch == [64, 64, 64] and gpu.training.batch_size == 2
    source = gpu.source("data") + gpu.source("train") + gpu.source("evaluate")
    assert "RandCropByPosNegLabeld" in source and "spatial_dims=3" in source and "predict_volume" in source
    small = plan_for("segment the spheres", ISOTROPIC_CARD, SMALL_GPU, convention=None)
    assert small.recipe == "segmentation_2d" and "only 4 GB free" in small.reasons[0]


def test_h100_plan_uses_the_gpu_bf16_a_large_batch_and_a_large_network():
    t = plan_for(ORDINARY, compute=H100).training
    assert (t.device, t.precision, t.batch_size, t.threads, t.workers) == ("cuda", "bf16", 32, 16, 8)
    assert t.network["channels"] == [32, 64, 128, 256, 512] and t.patch == [128, 128]
    assert 300 <= t.steps <= 1000 and t.estimated_seconds <= 30
    assert t.describe(H100).startswith("Training on NVIDIA H100 80GB HBM3 (80 GB), bf16 autocast, batch 32")


def test_laptop_plan_keeps_the_cpu_recipe_that_meets_the_bar_in_a_minute():
    t = plan_for(ORDINARY, compute=LAPTOP).training
    assert (t.device, t.precision, t.batch_size, t.threads, t.workers, t.steps) == ("cpu", "fp32", 16, 2, 0, 450)
    assert t.network["channels"] == [8, 16, 32, 64]
    assert t.describe(LAPTOP).startswith("Training on 2 CPU cores, full precision, batch 16")


def test_more_cores_buy_more_steps_and_threads_are_never_a_constant():
    laptop, server = plan_for(ORDINARY, compute=LAPTOP), plan_for(ORDINARY, compute=SERVER_CPU)
    assert server.training.steps > 2 * laptop.training.steps and server.training.threads == 16
    setup = server.source("setup")
    assert "torch.set_num_threads(COMPUTE.cpu_cores)" in setup and "set_num_threads(2)" not in setup
    assert "compute_fingerprint()" in setup and "DEVICE = torch.device(COMPUTE.device)" in setup  # chosen at run time


def test_a_small_gpu_without_bf16_trains_in_full_precision_with_a_batch_that_fits():
    t = plan_for(ORDINARY, {**CARDIAC_CARD, "median_shape": [512, 512, 10]}, SMALL_GPU).training
    assert t.device == "cuda" and t.precision == "fp32" and t.patch == [512, 512]
    assert 1 <= t.batch_size < 32  # 4 GB free: the memory model caps the batch


def test_the_plan_is_shown_and_serialisable():
    plan = plan_for(ORDINARY, compute=H100)
    text = plan.markdown()
    assert "NVIDIA H100 80GB HBM3 (80 GB, 79 GB free, bf16)" in text and "batch 32" in text
    assert "z-score per image" in text and "ACDC: 1 RV, 2 MYO, 3 LV" in text
    assert "bf16 autocast, batch 32" in plan.step("train").note
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["training"]["device"] == "cuda" and data["compute"]["gpu_name"] == "NVIDIA H100 80GB HBM3"
    assert [s["name"] for s in data["steps"]][:3] == ["setup", "datacard", "quality_checks"]
    cells = plan.cells()
    assert all("source" in c for c in cells if c["tool"] == "cell")


def test_modality_decides_the_normalisation():
    mri = plan_for(ORDINARY)
    assert "NormalizeIntensity()" in mri.source("normalise")
    ct_card = {**ISOTROPIC_CARD, "modality": "CT"}
    ct = plan_for("segment the liver", ct_card, LAPTOP, convention=None)
    assert "ScaleIntensityRange" in ct.source("normalise") and "foreground_percentiles" in ct.source("normalise")
    # NIfTI CT says nothing about modality: air at -1000 HU gives it away.
    hu_card = {**ISOTROPIC_CARD, "cases": [{"intensity": {"p0.5": -1024.0}}, {"intensity": {"p0.5": -1000.0}}]}
    assert "ScaleIntensityRange" in plan_for("segment the liver", hu_card, LAPTOP, convention=None).source("normalise")


def test_preferences_override_what_the_plan_derives():
    plan = plan_for(ORDINARY, compute=H100, preferences=Preferences(steps=120, device="cpu"))
    assert plan.training.steps == 120 and plan.training.device == "cpu" and plan.training.precision == "fp32"
    forced = plan_for("segment the spheres", ISOTROPIC_CARD, LAPTOP, convention=None, preferences=Preferences(dims=3))
    assert forced.recipe == "segmentation_3d" and forced.training.network["channels"] == [8, 16, 32, 64]


def test_backend_selector():
    backend = make_backend("offline:steps=10,batch_size=4,dims=3,device=cpu")
    assert (backend.preferences.steps, backend.preferences.batch_size, backend.preferences.dims) == (10, 4, 3)
    assert backend.preferences.device == "cpu"
    with pytest.raises(ConfigError, match="unknown backend"):
        make_backend("gpt-5")
    with pytest.raises(ConfigError, match="unknown offline backend option"):
        make_backend("offline:wings=2")
    with pytest.raises(ConfigError, match="is not a int"):
        make_backend("offline:steps=many")


# ---------------------------------------------------------------------------------------------- repairs
def test_repair_rules_are_keyed_on_the_error_and_where_it_happened():
    assert match_rule({"ename": "RuntimeError", "evalue": "DefaultCPUAllocator: can't allocate memory"})["name"] == "out_of_memory"
    assert match_rule({"ename": "OutOfMemoryError", "evalue": "CUDA out of memory. Tried to allocate 2.00 GiB"})["name"] == "out_of_memory"
    inside = {"ename": "RuntimeError", "evalue": "Sizes of tensors must match except in dimension 1",
              "traceback": ['File ".../monai/networks/nets/unet.py", line 300, in forward']}
    assert match_rule(inside)["action"] == "patch_to_stride"
    # The same words from the data or prediction code are not a UNet problem: no rule, the error is shown as it is.
    outside = {"ename": "ValueError", "evalue": "could not broadcast input array from shape (128,128,10) into shape (128,128)",
               "traceback": ['File ".../pipelines/segmentation.py", line 40, in predict_volume']}
    assert match_rule(outside) is None
    assert match_rule({"ename": "ModuleNotFoundError", "evalue": "No module named 'monai'"})["action"] == "give_up"
    assert match_rule({"ename": "ZeroDivisionError", "evalue": "division by zero"}) is None


def _view(task="segment the LV, myocardium and RV and report EF", data_dir="/data"):
    return AgentView(task, data_dir, [], "", [], [], 0, 80)


class Driver:
    """Plays the agent loop for a Planner: answers each tool call with an observation chosen by a rule."""

    def __init__(self, planner, answer):
        self.planner, self.answer, self.calls = planner, answer, []

    def run(self, limit=80):
        steps = self.planner.steps()
        narration, call, _ = next(steps)
        for _ in range(limit):
            self.calls.append((narration, call))
            if call.name == "finish":
                return call
            narration, call, _ = steps.send(self.answer(call, len(self.calls)))
        raise AssertionError("the planner did not finish")


def inspect_observation(compute=LAPTOP, findings=()):
    return Observation("card", data={"card": CARDIAC_CARD, "findings": list(findings), "label_convention": "acdc",
                                     "compute": compute.to_dict()})


def answers(oom_until=0, error_on=None, dice=0.95, compute=LAPTOP, findings=(), ef_errors=(1.0,)):
    """Observations like the real tools give: cells ok (ids c1, c2, ...), judges ok, metrics from evaluation."""
    state = {"cells": 0, "train_attempts": 0, "ef_checks": 0}

    def answer(call, _):
        if call.name == "inspect_data":
            return inspect_observation(compute, findings)
        if call.name == "judge":
            return Observation("ok", data={"verdict": "ok", "findings": []})
        source = call.arguments.get("source", "")
        if call.name == "add_cell" or call.name == "render":
            state["cells"] += 1
            cell_id = f"c{state['cells']}"
        else:
            cell_id = call.arguments["cell_id"]
        if "model = UNet" in source:
            state["train_attempts"] += 1
            if state["train_attempts"] <= oom_until:
                error = {"ename": "OutOfMemoryError", "evalue": "CUDA out of memory. Tried to allocate 2.00 GiB",
                         "traceback": []}
                return Observation("failed", data={"cell_id": cell_id, "ok": False, "error": error}, is_error=True)
        if error_on and error_on in source:
            error = {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": []}
            return Observation("failed", data={"cell_id": cell_id, "ok": False, "error": error}, is_error=True)
        metrics = {"dice_mean": dice} if "dice_per_label" in source else {}
        if "reference EF" in source:  # the held-out EF check: errors in turn, the last one repeated
            metrics = {"ef_abs_error": ef_errors[min(state["ef_checks"], len(ef_errors) - 1)]}
            state["ef_checks"] += 1
        return Observation("ran", data={"cell_id": cell_id, "ok": True, "metrics": metrics})

    return answer


def test_findings_become_explicit_fixes_with_the_cells_of_the_plan():
    findings = [
        {"case": "p1_ED", "kind": "orientation_flip", "severity": "error", "message": "m", "evidence": {"flip_axis": 1, "fit_given": 0.1}},
        {"case": "p2_ES", "kind": "label_convention", "severity": "error", "message": "m", "evidence": {"mapping": {"1": 3, "2": 2, "3": 1}}},
        {"case": "p3_ED", "kind": "fragmented", "severity": "warning", "message": "m", "evidence": {}},
        {"case": "labelsTr/x.nii.gz", "kind": "unreadable", "severity": "warning", "message": "m", "evidence": {}},
    ]
    planner = Planner(_view(), Preferences(), [])
    driver = Driver(planner, answers(findings=findings))
    finish = driver.run()
    source = next(c.arguments["source"] for _, c in driver.calls if c.name == "add_cell" and "fixes = [" in c.arguments["source"])
    assert "('p1_ED', 'orientation_flip', {'flip_axis': 1})" in source
    assert "('p2_ES', 'label_convention', {'mapping': {'1': 3, '2': 2, '3': 1}})" in source
    assert "('p3_ED', 'exclude', {})" in source and "x.nii.gz" not in source
    assert [f["finding"] for f in planner.plan.fixes] == ["orientation_flip", "label_convention", "fragmented"]
    assert finish.arguments["status"] == "solved"
    renders = [c for _, c in driver.calls if c.name == "render"]
    assert renders[0].arguments["title"] == "p1_ED after repair"  # the repaired data is looked at


def test_out_of_memory_shrinks_the_batch_then_moves_to_the_cpu_and_the_notebook_says_so():
    repairs = []
    planner = Planner(_view(), Preferences(), repairs)
    driver = Driver(planner, answers(oom_until=5, compute=SMALL_GPU))
    finish = driver.run()
    assert finish.arguments["status"] == "solved"
    fixes = [r["fix"] for r in repairs if r["rule"] == "out_of_memory"]
    assert len(fixes) == 5 and "batch halved" in fixes[0] and "moved from the CUDA device to the CPU" in fixes[-1]
    edits = [c for _, c in driver.calls if c.name == "edit_cell"]
    setup_edit = next(c for c in edits if "DEVICE =" in c.arguments["source"])
    assert 'DEVICE = torch.device("cpu")' in setup_edit.arguments["source"]
    train = [c for _, c in driver.calls if "model = UNet" in c.arguments.get("source", "")][-1]
    assert "Changed while running: batch halved" in train.arguments["note"] and "after running out of memory" in train.arguments["note"]
    assert planner.plan.training.device == "cpu"


def test_out_of_memory_on_the_cpu_with_the_smallest_batch_ends_plainly():
    planner = Planner(_view(), Preferences(batch_size=2), [])
    finish = Driver(planner, answers(oom_until=99)).run()
    assert finish.arguments["status"] == "failed"
    assert "CUDA out of memory" in finish.arguments["summary"] and "nothing left to change" in finish.arguments["summary"]


def test_an_error_no_rule_explains_is_shown_plainly_and_not_retried():
    driver = Driver(Planner(_view(), Preferences(), []), answers(error_on="predict_volume"))
    finish = driver.run()
    assert finish.arguments["status"] == "failed" and "ZeroDivisionError: division by zero" in finish.arguments["summary"]
    assert sum("predict_volume" in c.arguments.get("source", "") for _, c in driver.calls) == 1


def test_missing_the_bar_trains_twice_as_long_once():
    repairs = []
    planner = Planner(_view(), Preferences(), repairs)
    finish = Driver(planner, answers(dice=0.5)).run()
    assert [r["rule"] for r in repairs] == ["train_longer"] and planner.plan.training.steps == 900
    assert finish.arguments["status"] == "failed" and "quality bar is not met: dice_mean = 0.5" in finish.arguments["summary"]


def test_an_ef_error_above_the_bar_trains_longer_and_checks_again():
    repairs = []
    planner = Planner(_view(), Preferences(), repairs)
    driver = Driver(planner, answers(ef_errors=(3.5, 2.1)))
    assert driver.run().arguments["status"] == "solved"
    assert [r["rule"] for r in repairs] == ["train_longer"] and "ef_abs_error = 3.5" in repairs[0]["error"]
    reruns = [c.arguments["source"] for _, c in driver.calls if c.name == "edit_cell"]
    assert "STEPS = 900" in reruns[0] and "reference EF" in reruns[-1]  # train again, then check the EF again
    assert planner.plan.quality_bar["ef_abs_error"] == ["<=", 3.0]


def test_fragmented_predictions_are_repaired_then_checked_shown_and_judged_again():
    """After the largest-component repair the plausibility cell, the montage and the judge see the repaired
    predictions: the notebook's checks are of what it reports, not of what came before the repair."""
    base = answers()
    judged = []

    def answer(call, n):
        if call.name == "judge" and call.arguments["context"] == "predictions":
            judged.append(n)
            if len(judged) == 1:
                fragment = {"case": "p3_ED", "kind": "fragmented", "severity": "warning", "message": "m", "evidence": {}}
                return Observation("flag", data={"verdict": "flag", "findings": [fragment]})
        return base(call, n)

    planner = Planner(_view(), Preferences(), [])
    driver = Driver(planner, answer)
    assert driver.run().arguments["status"] == "solved"
    after = [c for _, c in driver.calls][judged[0]:judged[1] - 1]
    assert "keep_largest_component" in after[0].arguments["source"]  # the evaluation, repaired
    assert "check_prediction" in after[1].arguments["source"]  # the plausibility checks, of the repaired predictions
    assert after[2].name == "run_cell" and len(judged) == 2  # the montage shown again, then judged again


def test_a_training_length_the_user_edited_steers_the_next_repair():
    """Approve mode: the user ran the train cell with STEPS = 30 instead of 450; training twice as long is 60."""
    base = answers(dice=0.5)

    def answer(call, n):
        obs = base(call, n)
        source = call.arguments.get("source", "")
        if call.name == "add_cell" and "model = UNet" in source:
            obs.data.update(edited_by_user=True, source=source.replace("STEPS = 450", "STEPS = 30"))
        return obs

    planner = Planner(_view(), Preferences(), [])
    driver = Driver(planner, answer)
    driver.run()
    retrain = [c.arguments["source"] for _, c in driver.calls if c.name == "edit_cell" and "model = UNet" in c.arguments["source"]]
    assert len(retrain) == 1 and "STEPS = 60" in retrain[0] and planner.plan.training.steps == 60
    assert "training length set to 30 steps by you" in " ".join(planner.plan.adjustments)
    assert planner.notes == ["The plan follows your edit: training length set to 30 steps by you (the plan had 450)."]


def test_no_data_folder_fails_clearly():
    finish = Driver(Planner(_view(data_dir=None), Preferences(), []), answers()).run()
    assert "no data folder" in finish.arguments["summary"]


# ---------------------------------------------------------------------------------------------- whole runs
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
    # Every patient has a row, also those whose training label was excluded as a pitfall (measured on the network's).
    assert summary["metrics"]["patients_reported"] == summary["demo"]["patients"]
    notebook = json.loads((tmp_path / "cardiac_demo.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in notebook["cells"])
    assert "label flipped back onto the anatomy" in json.dumps(notebook)  # the fix table, in plain words
    assert "Split by patient" in text and "How this analysis was planned" in text
    plan = notebook["metadata"]["medagent"]["plan"]
    assert plan["recipe"] == "segmentation_2d" and plan["training"]["device"] == "cpu"
    assert notebook["metadata"]["medagent"]["status"] == "solved"


@pytest.mark.slow
def test_classification_end_to_end(tmp_path):
    from jupyter_medagent.bench.data import lesions

    data = tmp_path / "lesions"
    lesions(data, cases_per_class=24)
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", "run", "Classify these scans: which show a lesion?",
                             "--data", str(data), "--out", str(tmp_path / "nb.ipynb"), "--json",
                             "--accept", "balanced_accuracy>=0.85"], capture_output=True, text=True, timeout=600)
    summary = json.loads(result.stdout)
    assert result.returncode == 0, summary["reason"]
    assert summary["reexecuted_ok"] is True and summary["metrics"]["balanced_accuracy"] >= 0.85


@pytest.mark.slow
def test_the_3d_recipe_runs_end_to_end(tmp_path):
    """The 3D full-resolution recipe (chosen on a GPU for isotropic data) forced on this CPU with a short budget:
    its cells (patch sampling, 3D UNet, sliding-window prediction) run and re-run cleanly."""
    from jupyter_medagent.bench.data import spheres

    data = tmp_path / "spheres"
    spheres(data, cases=8)
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", "run", "Segment the spheres.", "--data", str(data),
                             "--out", str(tmp_path / "nb.ipynb"), "--json",
                             "--backend", "offline:dims=3,steps=40,dice_bar=0.5"], capture_output=True, text=True,
                            timeout=600)
    summary = json.loads(result.stdout)
    assert summary["reexecuted_ok"] is True, summary["reason"]
    plan = json.loads((tmp_path / "nb.ipynb").read_text())["metadata"]["medagent"]["plan"]
    assert plan["recipe"] == "segmentation_3d" and plan["training"]["dims"] == 3
    assert summary["dice_mean"] > 0.5


@pytest.mark.slow
def test_a_run_that_retrains_reproduces_its_reported_numbers_when_verified(tmp_path):
    """Issue 22: a repair that trained again ran in a kernel whose random state the first training had consumed,
    and the verified notebook re-ran to other numbers. A bar that 20 steps of training miss and 40 meet forces the
    train_longer repair; the verification re-run compares the headline numbers with the reported ones."""
    from jupyter_medagent.synth.replicas import synth_cardiac

    synth_cardiac(tmp_path / "data", cases=6, seed=1)
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", "run", "Segment the LV, myocardium and RV",
                             "--data", str(tmp_path / "data"), "--out", str(tmp_path / "nb.ipynb"), "--json",
                             "--backend", "offline:steps=20,dice_bar=0.25"], capture_output=True, text=True, timeout=1800)
    summary = json.loads(result.stdout)
    notebook = json.loads((tmp_path / "nb.ipynb").read_text())
    provenance = notebook["metadata"]["medagent"]
    assert [r["rule"] for r in provenance["repairs"]][:1] == ["train_longer"], provenance["repairs"]
    assert summary["reexecuted_ok"] is True, summary["reason"]
    results = next(c for c in notebook["cells"] if c.get("metadata", {}).get("medagent", {}).get("results"))
    rows = provenance["reproduction"]["rows"]
    assert any(r["label"] == "mean Dice" for r in rows) and any(r["label"] == "Dice LV" for r in rows)
    # The training cell seeds itself, so on this CPU the retrained notebook repeats its numbers from the top.
    assert provenance["reproduction"]["reproduced"] is True, rows
    assert summary["status"] == "solved" and summary["verified"] == "yes"
    assert "**Reproduced:**" in "".join(results["source"])


def test_repairs_reach_the_event_stream(tmp_path):
    """A repair rule that fires shows up as a Repair event, not only in the planner's log."""
    from jupyter_medagent.agent.loop import Agent
    from jupyter_medagent.contracts.task import Task
    from jupyter_medagent.backends.offline import OfflineBackend

    class OneError:
        """An executor whose training runs out of memory, like a too-large batch would."""

        def __init__(self):
            self.calls = 0

        def execute(self, code, timeout=None, on_output=None):
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

    from jupyter_medagent.synth.replicas import synth_cardiac

    synth_cardiac(tmp_path / "data", cases=3, seed=0)
    agent = Agent(Task(ORDINARY, str(tmp_path / "data"), str(tmp_path)), OfflineBackend(), OneError(),
                  notebook_path=tmp_path / "nb.ipynb", reexecute=False)
    events = list(agent.run())
    repairs = [e for e in events if e.kind == "repair"]
    assert repairs and repairs[0].rule == "out_of_memory" and "batch halved" in repairs[0].reason


def test_dead_data_loader_workers_are_replaced_by_loading_in_the_kernel():
    rule = match_rule({"ename": "RuntimeError", "evalue": "DataLoader worker (pid 4242) is killed by signal: Bus error. "
                       "It is possible that dataloader's workers are out of shared memory."})
    assert rule["action"] == "no_workers"
    planner = Planner(_view(), Preferences(), [])
    state = {"failed": False}
    base = answers(compute=H100)

    def answer(call, n):
        if "model = UNet" in call.arguments.get("source", "") and not state["failed"]:
            state["failed"] = True
            error = {"ename": "RuntimeError", "evalue": "DataLoader worker (pid 4242) is killed by signal: Bus error.",
                     "traceback": []}
            return Observation("failed", data={"cell_id": "c9", "ok": False, "error": error}, is_error=True)
        return base(call, n)

    driver = Driver(planner, answer)
    assert driver.run().arguments["status"] == "solved"
    data_edit = next(c for _, c in driver.calls if c.name == "edit_cell" and "DataLoader(" in c.arguments["source"])
    assert "num_workers=0" in data_edit.arguments["source"] and planner.plan.training.workers == 0


def test_the_modality_the_request_states_reaches_the_data_card_where_the_files_say_none():
    stated = plan_for(ORDINARY).source("datacard")  # "... in these cine MRIs ..."
    assert "card.stated_modality = 'MR'" in stated and "if not card.stated_modality" in stated
    assert "stated_modality" not in plan_for(VAGUE).source("datacard")


BRAIN_CARD = {"n_cases": 6, "n_labelled": 6, "n_patients": 6, "label_values": [0, 1], "anisotropy": 1.0,
              "median_shape": [91, 109, 91], "median_spacing": [2.0, 2.0, 2.0], "modality": None, "cases": []}


@pytest.mark.parametrize("request_text", ["How much brain does each of these people have, in millilitres?",
                                          "how large is each brain?", "brain volumes please"])
def test_a_plain_question_about_masks_is_a_measurement(request_text):
    """Masks for every image and a quantity asked for: measure the masks; nothing to train."""
    plan = plan_for(request_text, BRAIN_CARD, convention=None)
    assert plan.recipe == "measurement" and plan.training is None and "volumes" in [s.name for s in plan.steps]


def test_the_request_and_the_data_disagree_in_one_plain_line():
    from jupyter_medagent.plan.intent import request_conflicts

    misleading = "In these label maps 1 is the left ventricle (M&Ms convention). Report each patient's EF."
    assert request_conflicts(misleading, CARDIAC_CARD, "acdc") == [
        "The request says the labels follow M&Ms (1 LV, 2 myocardium, 3 RV); the labels' shapes show ACDC "
        "(1 RV, 2 myocardium, 3 LV), so the data's convention is used."]
    assert request_conflicts(misleading, CARDIAC_CARD, "mnms") == []  # what it says holds
    assert request_conflicts("The masks were exported at 1 mm isotropic resolution", BRAIN_CARD, None) == [
        "The request says 1 mm voxels; the images' median spacing is 2 x 2 x 2 mm."]
    assert request_conflicts("These are thick-slice CT scans of the liver", {**BRAIN_CARD, "modality": "MR"}, None) == [
        "The request says CT; the files say MR.",
        "The request says thick slices; the voxels are near-isotropic (anisotropy 1.0)."]
    assert request_conflicts(ORDINARY, CARDIAC_CARD, "acdc") == []
