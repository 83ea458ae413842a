"""Every recipe's cells, rendered for a phantom, read as one notebook: pyflakes finds no unused import and no
undefined name, and a notebook imports only what its recipe uses."""

import pytest
from pyflakes.api import check
from pyflakes.reporter import Reporter

from jupyter_medagent.imaging import build_data_card
from jupyter_medagent.synth.replicas import synth_cardiac
from jupyter_medagent.synth.phantom2d import synth_medmnist, synth_nih, synth_seg2d, synth_xray
from jupyter_medagent.judge.quantitative import check_dataset, dataset_convention
from jupyter_medagent.plan import ComputeFingerprint, Preferences, make_plan, parse_request
from jupyter_medagent.plan.recipes import RECIPES

LAPTOP = ComputeFingerprint("cpu", cpu_cores=2, ram_free_gb=20.0)
H100 = ComputeFingerprint("cuda", cpu_cores=16, ram_free_gb=120.0, gpu_name="NVIDIA H100 80GB HBM3",
                          gpu_memory_gb=80.0, gpu_free_gb=79.0, bf16=True)
CINE_EF = "Segment the LV, myocardium and RV in these cine MRIs and give me the ejection fraction."

PHANTOMS = {
    "cardiac": lambda out: synth_cardiac(out, cases=4, pitfalls="all"),
    "acdc": lambda out: synth_cardiac(out, cases=4, layout="acdc", test_cases=1),
    "xray": lambda out: synth_xray(out, per_class=4),
    "nih": lambda out: synth_nih(out, patients=6),
    "medmnist3d": lambda out: synth_medmnist(out, per_class=4, dims=3),
    "seg2d": lambda out: synth_seg2d(out, cases=6),
}
CASES = [  # (phantom, request, machine, preferences, the recipe it must give)
    ("acdc", CINE_EF, LAPTOP, Preferences(), "segmentation_2d"),
    ("cardiac", CINE_EF, H100, Preferences(dims=3), "segmentation_3d"),
    ("cardiac", "Compute the ejection fraction from the given labels", LAPTOP, Preferences(), "measurement"),
    ("seg2d", "Segment the polyps in these endoscopy images.", LAPTOP, Preferences(), "segmentation_2d"),
    ("xray", "Train a model to detect pneumonia in these chest X-rays.", H100, Preferences(), "classification_2d"),
    ("nih", "Classify the findings in these chest X-rays.", LAPTOP, Preferences(), "multilabel_2d"),
    ("medmnist3d", "Classify these scans.", LAPTOP, Preferences(), "classification"),
]


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    made = {}

    def phantom(name):
        if name not in made:
            made[name] = tmp_path_factory.mktemp(name)
            PHANTOMS[name](made[name])
        return made[name]
    return phantom


def notebook_code(plan) -> str:
    """The plan's cells in order, as the kernel runs them (one namespace)."""
    return "\n".join(plan.source(step) for step in plan.steps if step.tool == "cell")


def pyflakes_messages(code: str) -> list[str]:
    class Collect(Reporter):
        def __init__(self):
            self.messages = []

        def flake(self, message):
            self.messages.append(str(message))

        def syntaxError(self, filename, msg, lineno, offset, text):
            self.messages.append(f"{lineno}: {msg}")

        def unexpectedError(self, filename, msg):
            self.messages.append(msg)

    reporter = Collect()
    check(code, "notebook", reporter)
    return reporter.messages


def plan_of(phantoms, phantom, request, compute, preferences):
    data = phantoms(phantom)
    card = build_data_card(data)
    findings = [f.to_dict() for f in check_dataset(card)]
    return make_plan(card.to_dict(), parse_request(request), compute, data_dir=str(data), findings=findings,
                     convention=dataset_convention(card), preferences=preferences)


def test_every_registered_recipe_is_rendered_here():
    assert {recipe for *_, recipe in CASES} == {r.name for r in RECIPES}


@pytest.mark.parametrize("phantom, request_text, compute, preferences, recipe", CASES,
                         ids=[f"{c[4]}-{c[0]}" for c in CASES])
def test_a_recipes_notebook_has_no_unused_import_and_no_undefined_name(phantoms, phantom, request_text, compute,
                                                                         preferences, recipe):
    plan = plan_of(phantoms, phantom, request_text, compute, preferences)
    assert plan.recipe == recipe
    assert pyflakes_messages(notebook_code(plan)) == []
    if plan.training:  # the repairs the planner may make change cells: the changed notebook is as clean
        plan.params["postprocess"] = ("\nfrom jupyter_medagent.pipelines.segmentation import keep_largest_component"
                                      "\npredictions = {k: keep_largest_component(v, STRUCTURES) for k, v in "
                                      "predictions.items()}") if "segmentation" in recipe else ""
        while plan.shrink_for_memory():
            pass
        assert pyflakes_messages(notebook_code(plan)) == []


def test_a_measurement_notebook_imports_no_training_helpers(phantoms):
    plan = plan_of(phantoms, "cardiac", "Compute the ejection fraction from the given labels", LAPTOP, Preferences())
    code = notebook_code(plan)
    assert "ejection_fraction" in [s.name for s in plan.steps]
    for unused in ("import torch", "monai", "compute_fingerprint", "dice_per_label", "patient_split"):
        assert unused not in code
    setup = plan.source("setup")
    assert "from jupyter_medagent.imaging import build_data_card, volumes_ml" in setup


def test_pyflakes_sees_what_this_test_relies_on():
    assert pyflakes_messages("import torch\nprint(DATA)\n") == ["notebook:1:1: 'torch' imported but unused",
                                                               "notebook:2:7: undefined name 'DATA'"]
