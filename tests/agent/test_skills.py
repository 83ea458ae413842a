"""Skills for model backends: the toolkit reference generated from the code, and the offline planner's plan
offered through propose_recipe. A scripted backend that adopts the plan solves a task (judged against the
phantom's truth); a run without skills neither shows nor accepts them."""

from __future__ import annotations

import inspect

import pytest

from jupyter_medagent import imaging
from jupyter_medagent.agent.loop import Agent, load_system_prompt
from jupyter_medagent.agent.protocols import ToolCall
from jupyter_medagent.agent.skills import toolkit_reference
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.bench.data import make_data
from jupyter_medagent.bench.judging import judge_run
from jupyter_medagent.pipelines import measures

from .conftest import ScriptedBackend, call

REQUEST = "Compute the LV volumes and ejection fraction of each patient from the given labels."
CRITERIA = {"ef_error": {"tolerance": 3.0, "min_patients": 4, "statistic": "max"}, "pitfalls_handled": {}}


@pytest.fixture(scope="module")
def ef_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ef") / "data"
    truth = make_data("cardiac_phantom", {"cases": 5, "seed": 8, "pitfalls": ["orientation_flip", "label_convention"]},
                      folder)
    return folder, truth


def test_the_reference_is_generated_from_the_code():
    index = toolkit_reference()
    assert all(name in index for name in imaging.__all__)  # every public name, nothing hand-listed
    assert "jupyter_medagent.pipelines.measures" in index and "ef_by_patient" in index
    entry = toolkit_reference(name="ef_by_patient")
    parameters = inspect.signature(measures.ef_by_patient).parameters
    assert "ef_by_patient(cases: list[Case], label_of: Callable[[Case], ndarray | None], lv: int" in entry
    assert all(f"{name}:" in entry for name in parameters)
    assert all(line.strip() in entry for line in inspect.getdoc(measures.ef_by_patient).splitlines())
    listing = toolkit_reference("pipelines")  # a package: all of its modules
    assert "patient_split(" in listing and "predict_volume(" in listing and "render_montage" not in listing
    with pytest.raises(LookupError, match="no toolkit function or class named 'segment_everything'"):
        toolkit_reference(name="segment_everything")
    with pytest.raises(LookupError, match="the modules are: jupyter_medagent.imaging"):
        toolkit_reference("numpy")


def adopt_the_recipe(view):
    """After propose_recipe: every proposed step in order, as the plan says, then finish."""
    proposal = next(s.observation for s in reversed(view.history) if s.call.name == "propose_recipe")
    turns = []
    for step in proposal.data["cells"]:
        if step["tool"] == "cell":
            turns.append(call("add_cell", source=step["source"], note=step["note"]))
        elif step["tool"] == "render":
            turns.append(call("render", **step["arguments"]))
        else:
            turns.append(call("judge", context=step["note"]))
    return turns + [call("finish", status="solved", summary="Adopted the planner's recipe.")]


class Adopter(ScriptedBackend):
    def next_turn(self, view):
        if view.history and view.history[-1].call.name == "propose_recipe":
            self.turns = adopt_the_recipe(view) + self.turns
        return super().next_turn(view)


def test_a_backend_that_adopts_the_proposed_recipe_solves_the_task(tmp_path, executor, ef_data):
    data, truth = ef_data
    backend = Adopter([ToolCall("toolkit_reference", {"name": "ef_by_patient"}), call("propose_recipe")])
    agent = Agent(Task(REQUEST, str(data), str(tmp_path)), backend, executor, notebook_path=tmp_path / "nb.ipynb")
    finished = list(agent.run())[-1]
    reference, proposal = agent.history[0].observation, agent.history[1].observation
    assert "ef_by_patient(cases: list[Case]" in reference.text and not reference.is_error
    assert not proposal.is_error and proposal.data["plan"]["recipe"] == "measurement"
    assert "How this analysis was planned" in proposal.text and "check_dataset(card" in proposal.text
    assert "propose_recipe" in backend.views[0].system_prompt and "toolkit_reference" in backend.views[0].system_prompt
    run = {"status": finished.status, "reason": finished.reason, "reexecuted_ok": finished.reexecuted_ok,
           "metrics": finished.metrics, "notebook": finished.notebook}
    solved, verdict = judge_run(run, truth, CRITERIA)
    assert solved, verdict
    planted = len(truth["pitfalls"])
    assert planted >= 2 and f"pitfalls handled {planted}/{planted}" in verdict  # the plan's fix cell names each case


@pytest.mark.parametrize("skills, shown", [("none", set()), ("reference", {"toolkit_reference"})])
def test_a_run_without_skills_neither_shows_nor_accepts_them(tmp_path, executor, ef_data, skills, shown):
    data, _ = ef_data
    backend = ScriptedBackend([call("propose_recipe"), call("toolkit_reference"),
                               call("finish", status="failed", summary="no help")])
    agent = Agent(Task(REQUEST, str(data), str(tmp_path)), backend, executor, notebook_path=tmp_path / "nb.ipynb",
                  skills=skills)
    list(agent.run())
    view = backend.views[0]
    assert {t["name"] for t in view.tools} & {"toolkit_reference", "propose_recipe"} == shown
    assert ("toolkit_reference" in view.system_prompt) == bool(shown) and "propose_recipe" not in view.system_prompt
    refused = agent.history[0].observation
    assert refused.is_error and "unknown tool 'propose_recipe'" in refused.text
    assert agent.history[1].observation.is_error == (not shown)
    assert load_system_prompt(()) == load_system_prompt(["add_cell"])  # the base prompt names no skill


def _documented_functions():
    from jupyter_medagent.agent.skills import toolkit_modules

    for module, entries in toolkit_modules().items():
        for name, obj in entries:
            if inspect.isclass(obj):
                yield from ((f"{module}.{name}.{m}", f) for m, f in vars(obj).items()
                            if not m.startswith("_") and inspect.isfunction(f))
            else:
                yield f"{module}.{name}", obj


def test_every_toolkit_function_says_its_arguments_and_what_it_returns():
    """What toolkit_reference shows a model is enough to call each function right: every argument named under
    Args, and a Returns section."""
    undocumented = []
    for qualified, function in _documented_functions():
        doc = inspect.getdoc(function) or ""
        arguments = doc.split("Args:", 1)[1].split("Returns:", 1)[0] if "Args:" in doc else ""
        parameters = [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]
        missing = [p for p in parameters if f"\n    {p}:" not in "\n" + arguments]
        if missing or "Returns:" not in doc:
            undocumented.append(f"{qualified}: {'no Returns; ' if 'Returns:' not in doc else ''}args {missing}")
    assert not undocumented, "\n".join(undocumented)
    fix = toolkit_reference(name="fix_case")
    assert all(kind in fix for kind in ("orientation_flip", "flip_axis", "permute", "mapping", "interpolated_labels",
                                        "empty_label", "not repaired", "case.excluded_label"))
    assert "ef_percent" in toolkit_reference(name="ef_by_patient")


def test_one_vocabulary_of_metric_keys():
    """The prompt lists the keys the recipes report and the bench judges read."""
    import re
    from pathlib import Path

    from jupyter_medagent.notebook import headline
    from jupyter_medagent.contracts.metric_keys import EF_ANSWER_KEYS, EF_KEYS, is_metric_key, metric_keys
    from jupyter_medagent.bench.judging import METRIC_NAMES

    prompt = load_system_prompt(())
    assert all(f"- {key}:" in prompt for key in metric_keys())
    templates = Path(__file__).parents[2] / "jupyter_medagent" / "plan" / "templates"
    reported = {key for path in templates.rglob("*.tmpl")
                for bundle in re.findall(r"show_metrics\((.*?)\)\n", path.read_text(), re.S)
                for key in re.findall(r'"(\w+)":', bundle)}
    assert reported and all(is_metric_key(k) for k in reported), sorted(k for k in reported if not is_metric_key(k))
    assert is_metric_key("dice_LV") is False and is_metric_key("dice_lv") and is_metric_key("hd95_myo_mm")
    assert METRIC_NAMES["ef"] == EF_ANSWER_KEYS and {k for k, _ in headline.EF_SOURCES} == set(EF_KEYS)
