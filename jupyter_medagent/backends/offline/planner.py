"""The offline expert planner: a deterministic backend that does the whole job without a network.

It looks first (``inspect_data``: the data card, the quality findings and the machine the kernel runs on),
makes a Plan (``jupyter_medagent.plan``: a recipe chosen from the data and the machine, configured from
their fingerprints), then carries the plan out step by step: cells from the recipe's templates, renders
and judge calls. It reads what every step returned. Errors are repaired by rules keyed on the error and
on where it happened (repair_rules.json); a repair that changes nothing is never tried twice, and an error
no rule explains ends the run with that error shown plainly. The recipe reviews results (train longer
when the quality bar is missed, act on the judge's findings). It finishes only when the bar is met.
"""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from typing import Any
from collections.abc import Generator

from jupyter_medagent.contracts.protocols import AgentView, BackendBase, ModelTurn, Observation, ToolCall
from jupyter_medagent.plan import ComputeFingerprint, Plan, PlanFailed, Preferences, Step, make_plan, parse_request
from jupyter_medagent.plan.recipes import recipe_named

REPAIR_RULES = json.loads(resources.files(__package__).joinpath("repair_rules.json").read_text())
MAX_REPAIRS_PER_STEP = 8  # room for a batch of 32 halved down to 2, then the CPU

Turn = tuple[str, ToolCall, list[str]]  # narration, tool call, plan steps (announced once)


def label(step: Step) -> str:
    return step.title or step.name.replace("_", " ")


def match_rule(error: dict[str, Any]) -> dict[str, Any] | None:
    """The first rule whose error name, message and (when it names one) traceback location match."""
    traceback = "\n".join(error.get("traceback") or [])
    for rule in REPAIR_RULES:
        if not re.fullmatch(rule["ename"], error.get("ename", "")):
            continue
        if not re.search(rule["evalue"], error.get("evalue", ""), re.I):
            continue
        if "traceback" in rule and not re.search(rule["traceback"], traceback):
            continue
        return rule
    return None


class Planner:
    def __init__(self, view: AgentView, preferences: Preferences, repairs: list):
        self.view, self.preferences, self.repairs = view, preferences, repairs
        self.plan: Plan | None = None
        self.cell_ids: dict[str, str] = {}
        self.metrics: dict[str, Any] = {}
        self.notes: list[str] = []  # what the plan took from the user's edits, said with the next turn

    def steps(self) -> Generator[Turn, Observation, None]:
        try:
            yield from self._steps()
        except PlanFailed as exc:  # said once, by the run's end
            yield "", ToolCall("finish", {"status": "failed", "summary": f"Could not finish: {str(exc).rstrip('.')}."}), []

    def _steps(self) -> Generator[Turn, Observation, None]:
        view = self.view
        intent = parse_request(view.task)
        if not view.data_dir:
            raise PlanFailed("no data folder was given: point me at the folder of scans (--data DIR)")
        obs = yield ("I start by looking at the data and at the machine before deciding anything.",
                     ToolCall("inspect_data", {}), [])
        if obs.is_error:  # the data's own problem, in the words `medagent inspect` uses
            raise PlanFailed(obs.data.get("problem") or obs.text)
        compute = ComputeFingerprint.from_dict(obs.data["compute"])
        plan = self.plan = make_plan(obs.data["card"], intent, compute, data_dir=view.data_dir,
                                     output_dir=view.output_dir if view.relative_paths else None,
                                     convention=obs.data.get("label_convention"), findings=obs.data["findings"],
                                     preferences=self.preferences)
        recipe = recipe_named(plan.recipe)
        announce = "Plan, derived from the data card and this machine: " + "; ".join(plan.reasons) + "."
        if plan.training:
            announce += f" {plan.training.describe(compute)}."
        for index, step in enumerate(plan.steps):
            obs = yield from self._do(step, announce if index == 0 else "", plan.outline() if index == 0 else [])
            review = recipe.review(plan, step, obs.data)
            if review is None:
                continue
            if review.fail:
                raise PlanFailed(review.fail)
            if review.repair:
                self.repairs.append(review.repair)
            for name in review.rerun:
                yield from self._rerun(plan.step(name))
        status, summary = recipe.outcome(plan, self.metrics)
        yield "", ToolCall("finish", {"status": status, "summary": summary}), []

    # ------------------------------------------------------------------ one step
    def _do(self, step: Step, narration: str, outline: list[str]) -> Generator[Turn, Observation, Observation]:
        if step.tool == "cell":
            obs = yield narration, ToolCall("add_cell", {"source": self.plan.source(step), "note": step.note}), outline
            self.cell_ids[step.name] = obs.data.get("cell_id", "")
            self._heed(step, obs)
            obs = yield from self._until_ok(step, obs)
        elif step.tool == "render":
            obs = yield narration, ToolCall("render", dict(step.args)), outline
            self.cell_ids[step.name] = obs.data.get("cell_id", "")
        else:
            obs = yield narration or f"Judging the {step.note} before going on.", ToolCall("judge", {"context": step.note}), outline
        self.metrics.update(obs.data.get("metrics", {}))
        return obs

    def _until_ok(self, step: Step, obs: Observation) -> Generator[Turn, Observation, Observation]:
        """Repair a failed cell with the rule its error calls for, re-running the cells the repair changed."""
        tried: set[tuple[str, str]] = set()
        for _ in range(MAX_REPAIRS_PER_STEP):
            if not obs.is_error:
                return obs
            error = obs.data.get("error") or {"ename": "Refused", "evalue": obs.text}
            shown = f"{error['ename']}: {error['evalue'][:300]}"
            rule = match_rule(error)
            if rule is None or rule["action"] == "give_up":
                why = f" ({rule['explain']})" if rule else ""
                raise PlanFailed(f"the step '{label(step)}' failed with {shown}{why}")
            change, rerun = self._apply(rule)
            if change is None or (rule["name"], change) in tried:
                raise PlanFailed(f"the step '{label(step)}' failed with {shown}; the repair '{rule['name']}' has nothing "
                                 "left to change, so it is not tried again")
            tried.add((rule["name"], change))
            self.repairs.append({"rule": rule["name"], "cell": step.name, "error": shown[:200],
                                 "fix": f"{rule['explain']}: {change}"})
            for name in rerun:
                if name in self.cell_ids and name != step.name:
                    yield from self._rerun(self.plan.step(name))
            obs = yield (f"Repair rule '{rule['name']}' fired: {rule['explain']}: {change}.",
                         ToolCall("edit_cell", {"cell_id": self.cell_ids[step.name], "source": self.plan.source(step),
                                                "note": step.note}), [])
            self._heed(step, obs)
        if obs.is_error:
            raise PlanFailed(f"the step '{label(step)}' still fails after {MAX_REPAIRS_PER_STEP} repairs: {obs.text[-300:]}")
        return obs

    def _heed(self, step: Step, obs: Observation) -> None:
        """A cell the user edited before it ran: the plan reads the values it set, so what follows builds on them."""
        if not obs.data.get("edited_by_user"):
            return
        change = self.plan.adopt_user_edit(step, obs.data.get("source", ""))
        if change:
            recipe_named(self.plan.recipe).describe_training(self.plan)
            self.notes.append(f"The plan follows your edit: {change}.")

    def _apply(self, rule: dict[str, Any]) -> tuple[str | None, list[str]]:
        """Change the plan as the rule says; (what changed, steps to run again) or (None, []) if nothing can."""
        plan = self.plan
        if rule["action"] == "shrink_for_memory" and plan.training:
            shrunk = plan.shrink_for_memory()
            if shrunk is None:
                return None, []
            change, rerun = shrunk
            plan.adjustments.append(f"{change}, after running out of memory")
            recipe_named(plan.recipe).describe_training(plan)
            return change, rerun
        if rule["action"] == "no_workers" and plan.training and plan.training.workers:
            change = f"data-loader workers reduced from {plan.training.workers} to 0"
            plan.training.workers = plan.params["workers"] = 0
            plan.adjustments.append(change)
            return change, ["data"]
        if rule["action"] == "patch_to_stride" and plan.training:
            multiple = 2 * math.prod(plan.training.network["strides"])
            patch = [-(-p // multiple) * multiple for p in plan.training.patch]
            if patch == plan.training.patch:
                return None, []
            plan.retrain(batch_size=plan.training.batch_size, steps=plan.training.steps, patch=patch)
            change = f"training patch padded to {patch}, a multiple of {multiple}"
            plan.adjustments.append(change)
            return change, ["data"]
        return None, []

    def _rerun(self, step: Step) -> Generator[Turn, Observation, Observation]:
        """Run a step again after the plan changed it (the notebook keeps one copy of each cell): a cell with its
        new code, a render as it was (it shows what the cells before it now make), a judge on that new evidence."""
        if step.tool == "judge":
            obs = yield f"Judging the {step.note} again after the repair.", ToolCall("judge", {"context": step.note}), []
            self.metrics.update(obs.data.get("metrics", {}))
            return obs
        if step.tool == "render":
            obs = yield "", ToolCall("run_cell", {"cell_id": self.cell_ids[step.name]}), []
        else:
            obs = yield "", ToolCall("edit_cell", {"cell_id": self.cell_ids[step.name], "source": self.plan.source(step),
                                                   "note": step.note}), []
            self._heed(step, obs)
        if obs.is_error:
            error = obs.data.get("error") or {}
            raise PlanFailed(f"the step '{label(step)}' failed after a change: "
                             f"{error.get('ename', 'error')}: {error.get('evalue', obs.text[-300:])}")
        self.metrics.update(obs.data.get("metrics", {}))
        return obs


class OfflineBackend(BackendBase):
    """The default backend: deterministic, no network, no tokens, no cost."""

    name = "offline"
    model = "expert-planner"
    model_written = False  # its cells are the project's own templates

    def __init__(self, preferences: Preferences | None = None):
        self.preferences = preferences or Preferences()
        self.repairs: list[dict[str, Any]] = []
        self._planner: Planner | None = None
        self._steps: Generator[Turn, Observation, None] | None = None

    @property
    def plan(self) -> Plan | None:
        return self._planner.plan if self._planner else None

    @property
    def fixes(self) -> list[dict[str, Any]]:
        return self.plan.fixes if self.plan else []

    def next_turn(self, view: AgentView) -> ModelTurn:
        try:
            if self._steps is None or view.step == 0:
                self.repairs.clear()
                self._planner = Planner(view, self.preferences, self.repairs)
                self._steps = self._planner.steps()
                text, call, plan = next(self._steps)
            else:
                text, call, plan = self._steps.send(view.history[-1].observation)
        except StopIteration:
            text, call, plan = "", ToolCall("finish", {"status": "failed", "summary": "The plan ended without a result."}), []
        if self._planner.notes:
            text = " ".join(self._planner.notes + [text]).strip()
            self._planner.notes.clear()
        return ModelTurn(text=text, tool_calls=[call], plan=plan)
