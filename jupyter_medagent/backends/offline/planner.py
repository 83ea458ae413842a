"""The offline expert planner: a deterministic backend that does the whole job without a network.

It reads the request and the data card, chooses a recipe, derives the configuration
from the data, writes cells from templates (cells/*.py.tmpl), reads what each cell
returned, repairs errors with rules keyed on the error (repair_rules.json), acts on
the judge's findings, and finishes only when the quality bar is met. Every cell is
its best attempt given what it knows; nothing is staged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any, Generator

from jupyter_medagent.agent.protocols import AgentView, ModelTurn, Observation, ToolCall
from jupyter_medagent.backends.offline.intent import Intent, parse_request
from jupyter_medagent.judge.quantitative import CONVENTIONS

PACKAGE = resources.files(__package__)
REPAIR_RULES = json.loads(PACKAGE.joinpath("repair_rules.json").read_text())
THICK_SLICE_ANISOTROPY = 3.0
# Finding kinds the fixes cell can repair or handle; anything else excludes the label.
FIXABLE = {"orientation_flip", "axis_permutation", "label_convention", "spacing_mismatch", "intensity_scale",
           "interpolated_labels", "empty_label", "stray_labels", "geometry_mismatch"}

Turn = tuple[str, ToolCall, list[str]]  # narration, tool call, plan steps (announced once)


class PlanFailed(Exception):
    """The planner cannot go on; the message says why in plain words."""


@dataclass
class Settings:
    steps: int = 450  # training steps (about 60 s on 2 CPU cores for 128x128 slices)
    batch_size: int = 16
    test_fraction: float = 0.3
    seed: int = 0
    threads: int = 2
    dice_bar: float = 0.90
    accuracy_bar: float = 0.85  # balanced accuracy on held-out patients, for classification
    epochs: int = 30  # classification training epochs
    channels: tuple[int, ...] = (8, 16, 32, 64)
    plane_multiple: int = 16


@dataclass
class Recipe:
    kind: str  # "segmentation_2d", "measurement" or "classification"
    structures: dict[int, str]
    convention: str | None
    measures: list[str]
    reasons: list[str] = field(default_factory=list)


def match_rule(error: dict[str, Any]) -> dict[str, Any] | None:
    for rule in REPAIR_RULES:
        if re.fullmatch(rule["ename"], error.get("ename", "")) and re.search(rule["evalue"], error.get("evalue", ""), re.I):
            return rule
    return None


def choose_recipe(intent: Intent, card: dict, convention: str | None) -> Recipe:
    """Pick the recipe and derive its configuration from the request and the data card."""
    labelled = card["n_labelled"]
    values = [v for v in card["label_values"] if v != 0]
    if "classification" in intent.task_types and not intent.wants_segmentation:
        classes = card.get("classes") or []
        if not classes:
            raise PlanFailed("a classification needs the class of each scan: put each class's scans in its own "
                             "sub-folder (e.g. DIR/normal/, DIR/lesion/)")
        return Recipe("classification", dict(enumerate(classes)), None, [],
                      [f"classes from the sub-folders: {', '.join(classes)}; a small 3D CNN with global max pooling on whole volumes"])
    if not values or not labelled:
        raise PlanFailed("the data has no label maps, so there is nothing to learn a segmentation from or to measure; "
                         "add label maps (e.g. labelsTr/) for at least some cases")
    cardiac = intent.cardiac or convention is not None
    if not (intent.task_types or intent.structures or cardiac):
        raise PlanFailed("I could not tell what to segment or measure from the request: name the structures "
                         "(e.g. 'segment the left ventricle') or the measure (e.g. 'ejection fraction')")
    if cardiac and convention:
        structures = {value: name for name, value in sorted(CONVENTIONS[convention].items(), key=lambda kv: kv[1])}
    elif len(values) == 1:
        name = next((s for s in intent.structures), "object")
        structures = {values[0]: name}
    else:
        structures = {v: f"label {v}" for v in values}
    measures = list(intent.measures)
    if cardiac and not measures and not intent.wants_segmentation:
        measures = ["ef", "volumes"]  # a cardiac request without details: what a cardiologist reads first
    reasons = []
    measurement_only = intent.from_given_labels or (intent.task_types == ["measurement"] and labelled == card["n_cases"])
    if measurement_only:
        reasons.append("the request asks for measurements from the existing labels, so no model is trained")
        return Recipe("measurement", structures, convention if cardiac else None, measures, reasons)
    if card["anisotropy"] > THICK_SLICE_ANISOTROPY:
        reasons.append(f"voxels are {card['anisotropy']:.1f}x longer across slices than in-plane: a 2D network on "
                       "in-plane slices, no interpolation across the thick axis")
    else:
        reasons.append("near-isotropic voxels would suit a 3D network, but on a CPU a 2D network on axial slices "
                       "reaches the same quality within minutes")
    return Recipe("segmentation_2d", structures, convention if cardiac else None, measures, reasons)


class Planner:
    def __init__(self, view: AgentView, settings: Settings, repairs: list, fixes: list):
        self.view, self.settings = view, settings
        self.repairs, self.fixes = repairs, fixes
        self.params: dict[str, Any] = {}
        self.cell_ids: dict[str, str] = {}

    # ------------------------------------------------------------------ helpers
    def _source(self, template: str) -> str:
        text = PACKAGE.joinpath("cells", f"{template}.py.tmpl").read_text()
        return Template(text).substitute(self.params).rstrip() + "\n"

    def _cell(self, template: str, note: str, narration: str = "",
              plan: list[str] | None = None) -> Generator[Turn, Observation, Observation]:
        """Add a cell from a template and run it; on an error, apply the matching repair rule and retry."""
        obs = yield narration, ToolCall("add_cell", {"source": self._source(template), "note": note}), plan or []
        self.cell_ids[template] = obs.data.get("cell_id", "")
        for _ in range(3):
            if not obs.is_error:
                return obs
            error = obs.data.get("error") or {"ename": "Refused", "evalue": obs.text}
            rule = match_rule(error)
            if rule is None or rule["action"] == "give_up":
                why = f" ({rule['explain']})" if rule else ""
                raise PlanFailed(f"the step '{note}' failed with {error['ename']}: {error['evalue']}{why}")
            self._apply(rule)
            self.repairs.append({"rule": rule["name"], "cell": template, "error": f"{error['ename']}: {error['evalue'][:200]}",
                                 "fix": rule["explain"]})
            # The changed setting may live in an earlier cell (e.g. the batch size in the data loader).
            for earlier in rule.get("rerun_first", []):
                if earlier in self.cell_ids and earlier != template:
                    yield from self._rerun(earlier)
            obs = yield (f"Repair rule '{rule['name']}' fired: {rule['explain']}.",
                         ToolCall("edit_cell", {"cell_id": self.cell_ids[template], "source": self._source(template),
                                                "note": note}), [])
        raise PlanFailed(f"the step '{note}' still fails after three repairs: {obs.text[-300:]}")

    def _rerun(self, template: str, note: str | None = None) -> Generator[Turn, Observation, Observation]:
        """Re-run a cell whose template parameters changed (the notebook keeps one copy of it)."""
        arguments = {"cell_id": self.cell_ids[template], "source": self._source(template)}
        if note:
            arguments["note"] = note
        obs = yield "", ToolCall("edit_cell", arguments), []
        if obs.is_error:
            raise PlanFailed(f"the step '{note}' failed after a change: {obs.text[-300:]}")
        return obs

    def _apply(self, rule: dict[str, Any]) -> None:
        if rule["action"] == "halve_batch" and self.params["batch_size"] > 1:
            self.params["batch_size"] //= 2
        elif rule["action"] == "pad_to_32":
            self.params["multiple"] = 32
        else:
            raise PlanFailed(f"repair rule {rule['name']} cannot be applied here")

    # ------------------------------------------------------------------ the plan
    def steps(self) -> Generator[Turn, Observation, None]:
        try:
            yield from self._steps()
        except PlanFailed as exc:
            yield str(exc), ToolCall("finish", {"status": "failed", "summary": f"Could not finish: {exc}."}), []

    def _steps(self) -> Generator[Turn, Observation, None]:
        view, s = self.view, self.settings
        intent = parse_request(view.task)
        if not view.data_dir:
            raise PlanFailed("no data folder was given: point me at the folder of scans (--data DIR)")
        obs = yield "I start by looking at the data before deciding anything.", ToolCall("inspect_data", {}), []
        if obs.is_error:
            raise PlanFailed(obs.text)
        card, findings, convention = obs.data["card"], obs.data["findings"], obs.data.get("label_convention")
        recipe = choose_recipe(intent, card, convention)
        self.params = {
            "data_dir": repr(str(Path(view.data_dir).resolve())), "seed": s.seed, "threads": s.threads,
            "convention_arg": f", convention={convention!r}" if recipe.convention else "",
            "convention": recipe.convention or "", "fixes": self._fix_list(findings),
            "test_fraction": s.test_fraction, "multiple": s.plane_multiple, "batch_size": s.batch_size,
            "n_classes": max(recipe.structures) + 1, "channels": tuple(s.channels), "steps": s.steps,
            "structures": repr(recipe.structures), "postprocess": "",
            "lv_value": next((v for v, n in recipe.structures.items() if n == "LV"), 0),
        }
        plan = self._plan_steps(recipe, findings)
        yield from self._cell("setup", "Set up: libraries, the data folder and fixed random seeds, so every re-run "
                                       "gives the same numbers.",
                              "Plan, derived from the data card: " + "; ".join(recipe.reasons) + ".", plan)
        yield from self._cell("datacard", "The data card: every case with its size, voxel spacing, orientation, "
                                          "intensity range and label values.")
        yield from self._data_quality(findings, recipe)
        if recipe.kind == "measurement":
            yield from self._measure(recipe)
        elif recipe.kind == "classification":
            yield from self._classify(recipe, card)
        else:
            yield from self._segment(recipe)

    def _plan_steps(self, recipe: Recipe, findings: list) -> list[str]:
        steps = ["Describe the data (data card)", f"Run the quality checks ({len(findings)} finding(s) so far)",
                 "Repair or exclude what the checks flag, then check again and look at a repaired case"]
        if recipe.kind == "measurement":
            steps += ["Measure volumes per structure from the labels"]
        elif recipe.kind == "classification":
            steps += ["Split by patient", f"Train a 3D CNN classifier ({self.settings.epochs} epochs)",
                      "Evaluate accuracy per class on held-out patients"]
        else:
            steps += ["Split by patient into training and held-out sets",
                      f"Train a 2D UNet on in-plane slices ({self.settings.steps} steps)",
                      "Evaluate Dice and HD95 on held-out patients", "Look at predictions and check their anatomy"]
        if "ef" in recipe.measures and recipe.convention:
            steps.append("Compute LV volumes and ejection fraction per patient")
        return steps

    def _fix_list(self, findings: list[dict]) -> str:
        entries = []
        for f in findings:
            if f["severity"] == "info" or f["kind"] == "unreadable":
                continue  # unreadable files never enter the analysis (load_cases skips them)
            kind = f["kind"] if f["kind"] in FIXABLE else "exclude"
            evidence = {k: v for k, v in f.get("evidence", {}).items() if k in ("flip_axis", "permute", "mapping")}
            entries.append((f["case"], kind, evidence))
            self.fixes.append({"case": f["case"], "finding": f["kind"], "message": f["message"]})
        if not entries:
            return "[]"
        return "[\n" + "".join(f"    ({c!r}, {k!r}, {e!r}),\n" for c, k, e in entries) + "]"

    def _data_quality(self, findings: list[dict], recipe: Recipe) -> Generator[Turn, Observation, None]:
        yield from self._cell("quality_checks", "Quality checks that need no model: geometry, label values, whether "
                                                "each label sits on the anatomy it claims, conventions, intensity scales.")
        verdict = yield "Judging the data before any training.", ToolCall("judge", {"context": "raw data quality"}), []
        n = len(verdict.data.get("findings", []))
        note = ("Repair what the checks found, in each file's own voxel space, then bring every image and label "
                "to the same orientation (RAS) without interpolation, and check the repaired pairs again."
                if n else "No problems were found; bring every image and label to the same orientation (RAS) "
                          "without interpolation and check the pairs once more.")
        yield from self._cell("fixes", note)
        example = next((f["case"] for f in findings if f["kind"] in ("orientation_flip", "axis_permutation",
                                                                      "label_convention")), None)
        if example:
            yield "", ToolCall("render", {"image": f"cases[{example!r}].image", "label": f"cases[{example!r}].label",
                                          "title": f"{example} after repair", "label_names": repr(recipe.structures)}), []
        verdict = yield "Judging the repaired data.", ToolCall("judge", {"context": "repaired image/label pairs"}), []
        if verdict.data.get("verdict") == "flag":
            raise PlanFailed("the quality checks still flag the data after repair: "
                             + "; ".join(f"{f.get('case')}: {f.get('message')}" for f in verdict.data["findings"][:5]))

    def _measure(self, recipe: Recipe) -> Generator[Turn, Observation, None]:
        yield from self._cell("measure_labels", "Volume of each structure in every case, from the repaired labels "
                                                "(voxel count x voxel volume).")
        if "ef" in recipe.measures and recipe.convention:
            yield from self._cell("ejection_fraction_labels", "Ejection fraction per patient: end-diastole is the "
                                  "frame with the larger LV cavity, end-systole the smaller.")
        yield "", ToolCall("finish", {"status": "solved", "summary": "Measured the structures from the repaired labels; "
                                      f"{len(self.fixes)} data problem(s) were found and handled (see the fix table)."}), []

    def _classify(self, recipe: Recipe, card: dict) -> Generator[Turn, Observation, None]:
        s = self.settings
        shapes = [c["shape"][:3] for c in card["cases"] if c.get("shape")]
        self.params.update(classes=repr(list(recipe.structures.values())), epochs=s.epochs,
                           shape=tuple(int(min(64, max(s[i] for s in shapes))) for i in range(3)))
        yield from self._cell("classify_split", "Split by patient, so no patient is in both the training and the "
                                                "held-out set; the class of each scan is its sub-folder.")
        yield "", ToolCall("render", {"image": "test_cases[0].image", "title": "a held-out scan, as the network sees it"}), []
        yield from self._cell("classify_train", f"Train a small 3D CNN (MONAI convolution blocks, global max pooling) on "
                                                f"whole volumes for {s.epochs} epochs; each volume z-scored on its own.")
        obs = yield from self._cell("classify_evaluate", "Classify the held-out patients: accuracy and recall per class.")
        metrics = obs.data.get("metrics", {})
        balanced = metrics.get("balanced_accuracy", 0.0)
        summary = (f"Trained a 3D CNN classifier; on held-out patients the balanced accuracy is {balanced:.3f} "
                   f"(accuracy {metrics.get('accuracy', 0.0):.3f}).")
        status = "solved" if balanced >= s.accuracy_bar else "failed"
        if status == "failed":
            summary += f" This is below the quality bar of {s.accuracy_bar}."
        yield "", ToolCall("finish", {"status": status, "summary": summary}), []

    def _segment(self, recipe: Recipe) -> Generator[Turn, Observation, None]:
        s = self.settings
        yield from self._cell("split", "Split by patient, never by frame or slice, so no patient is in both the "
                                       "training and the held-out set.")
        yield from self._cell("slices", "Training slices, each image z-score normalised on its own (MRI has no "
                                        "absolute intensity unit), with mild augmentation.")
        train_note = (f"Train a 2D UNet (MONAI) with Dice + cross-entropy loss for {{steps}} steps. Why 2D: "
                      + recipe.reasons[-1] + ".")
        yield from self._cell("train", train_note.format(steps=self.params["steps"]))
        obs = yield from self._cell("evaluate", "Segment the held-out patients and score them against their "
                                                "reference labels: Dice and HD95 per structure.")
        if obs.data.get("metrics", {}).get("dice_mean", 0.0) < s.dice_bar:
            self.params["steps"] *= 2
            self.repairs.append({"rule": "train_longer", "cell": "train",
                                 "error": f"mean Dice {obs.data['metrics'].get('dice_mean', 0):.3f} below {s.dice_bar}",
                                 "fix": f"train twice as long ({self.params['steps']} steps)"})
            yield from self._rerun("train", train_note.format(steps=self.params["steps"]))
            obs = yield from self._rerun("evaluate", "Segment the held-out patients again with the longer-trained model.")
        dice = obs.data.get("metrics", {})
        if recipe.convention:
            yield from self._cell("plausibility", "Check that every prediction is anatomically plausible: a closed "
                                                  "myocardial ring around the LV, the RV beside it, no stray fragments.")
        yield "", ToolCall("render", {"image": "example.image", "label": "example.label",
                                      "prediction": "predictions[example.case_id]", "label_names": "STRUCTURES",
                                      "title": "held-out case: reference (solid) vs prediction (dashed)"}), []
        verdict = yield "Looking at the predictions before trusting the numbers.", ToolCall("judge", {"context": "predictions"}), []
        if any(f.get("kind") == "fragmented" for f in verdict.data.get("findings", [])):
            self.params["postprocess"] = (
                "\n# Keep the largest connected piece of each structure: the judge found stray fragments."
                "\nfrom jupyter_medagent.pipelines.segmentation import keep_largest_component"
                "\npredictions = {k: keep_largest_component(v, STRUCTURES) for k, v in predictions.items()}")
            self.repairs.append({"rule": "keep_largest_component", "cell": "evaluate", "error": "fragmented predictions",
                                 "fix": "keep the largest connected component of each structure"})
            obs = yield from self._rerun("evaluate", "Segment the held-out patients, keeping the largest connected "
                                                     "piece of each structure, and score them again.")
            dice = obs.data.get("metrics", {})
        if "ef" in recipe.measures and recipe.convention:
            obs = yield from self._cell("ejection_fraction", "LV volumes and ejection fraction per held-out patient from "
                                        "the predicted segmentations, next to the reference labels' values.")
            dice = obs.data.get("metrics", {})
        mean = dice.get("dice_mean", 0.0)
        per = ", ".join(f"{name} {dice.get(f'dice_{name}', float('nan')):.3f}" for name in recipe.structures.values())
        summary = (f"Trained a 2D UNet on in-plane slices; on held-out patients the mean Dice is {mean:.3f} ({per}).")
        if "ef_abs_error" in dice:
            summary += f" Ejection fraction differs from the reference labels by {dice['ef_abs_error']:.1f} points on average."
        if self.fixes:
            summary += (f" The quality checks found {len(self.fixes)} problem(s) in the data; each was repaired or the label "
                        "excluded, as the fix table shows.")
        status = "solved" if mean >= s.dice_bar else "failed"
        if status == "failed":
            summary += f" This is below the quality bar of {s.dice_bar}."
        yield "", ToolCall("finish", {"status": status, "summary": summary}), []


class OfflineBackend:
    """The default backend: deterministic, no network, no tokens, no cost."""

    name = "offline"
    model = "expert-planner"

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self.repairs: list[dict[str, Any]] = []
        self.fixes: list[dict[str, Any]] = []
        self._steps: Generator[Turn, Observation, None] | None = None

    def next_turn(self, view: AgentView) -> ModelTurn:
        try:
            if self._steps is None or view.step == 0:
                self.repairs.clear()
                self.fixes.clear()
                self._steps = Planner(view, self.settings, self.repairs, self.fixes).steps()
                text, call, plan = next(self._steps)
            else:
                text, call, plan = self._steps.send(view.history[-1].observation)
        except StopIteration:
            text, call, plan = "", ToolCall("finish", {"status": "failed", "summary": "The plan ended without a result."}), []
        return ModelTurn(text=text, tool_calls=[call], plan=plan)
