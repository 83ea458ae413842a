"""What every recipe is: the Recipe base class (its own settings dataclass, quality bar, steps), the registry it
joins with ``@register``, the options a user may give the planner, and the targets (anatomy, structures,
measures) that recipes read from the request and the data's labels."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from jupyter_medagent.contracts.findings import KINDS
from jupyter_medagent.imaging.conventions import ANATOMY, structures_of
from jupyter_medagent.plan.compute import ComputeFingerprint
from jupyter_medagent.plan.analyses import ANALYSES, NoSettings, settings_from
from jupyter_medagent.plan.intent import Intent
from jupyter_medagent.plan.plan import Plan, Preferences, Step


@dataclass
class Review:
    """What a recipe decided after a step: run steps again, log a repair, or stop."""

    rerun: list[str] = field(default_factory=list)
    repair: dict[str, str] | None = None  # {"rule", "cell", "error", "fix"}
    fail: str | None = None


class Recipe:
    name = ""
    templates = ""  # this recipe's folder under plan/templates
    Settings: type = NoSettings  # what a user may set for this recipe (a dataclass with defaults)
    trains = True  # trains a network: the set-up cell also fixes the seeds and picks the device

    def settings(self, preferences: Preferences) -> Any:
        """This recipe's settings: the defaults, with the values the user gave (``preferences.settings``)."""
        return settings_from(self.Settings, preferences)

    def quality_bar(self, settings: Any) -> dict[str, list]:
        """What the outcome must reach to count as solved: {metric: [op, threshold]}."""
        return {}

    def applies(self, intent: Intent, card: dict, compute: ComputeFingerprint, convention: str | None,
                preferences: Preferences) -> str | None:
        """Why this recipe fits (shown to the user), or None. May raise PlanFailed for a request it owns
        but cannot serve with this data."""
        raise NotImplementedError

    def build(self, plan: Plan, card: dict, intent: Intent, convention: str | None) -> None:
        raise NotImplementedError

    def review(self, plan: Plan, step: Step, data: dict[str, Any]) -> Review | None:
        if step.name == "judge_repaired" and data.get("verdict") == "flag":
            return Review(fail="the quality checks still flag the data after repair: " + "; ".join(
                f"{f.get('case')}: {f.get('message')}" for f in data.get("findings", [])[:5]))
        return None

    def outcome(self, plan: Plan, metrics: dict[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    def describe_training(self, plan: Plan) -> None:
        """Bring the training step's title and note up to date after its set-up changed (a repair, a user's
        edit); a recipe that trains nothing has no such step."""

    # ------------------------------------------------------------------ shared by every recipe
    def cell(self, name: str, title: str, note: str, template: str | None = None) -> Step:
        return Step(name, "cell", title, note, template or f"{self.templates}/{name}")

    def data_steps(self, plan: Plan) -> list[Step]:
        """Set-up, data card and quality checks, the repairs they call for, and a look at the repaired data."""
        n = len(plan.fixes)
        fixes_note = ("Repair what the checks found, in each file's own voxel space, then bring every image and label "
                      "to the same orientation (RAS) without interpolation, and check the repaired pairs again."
                      if n else "The checks found nothing to repair; bring every image and label to the same "
                                "orientation (RAS) without interpolation and check the pairs once more.")
        steps = [
            self.cell("setup", "", "Set up: libraries, the data folder, the machine this notebook runs on (GPU or CPU) "
                      "and fixed random seeds, so every re-run gives the same numbers.", "common/setup_training")
            if self.trains else self.cell("setup", "", "Set up: libraries and the data folder.", "common/setup"),
            self.cell("datacard", "Describe the data (data card)", "The data card: every case with its size, voxel "
                      "spacing, orientation, intensity range and label values.", "common/datacard"),
            self.cell("quality_checks", f"Run the quality checks ({n} finding(s) so far)", "Quality checks that need no "
                      "model: geometry, label values, whether each label sits on the anatomy it claims, conventions, "
                      "intensity scales.", "common/quality_checks"),
            Step("judge_raw", "judge", note="raw data quality"),
            self.cell("fixes", "Repair or exclude what the checks flag, then check again", fixes_note, "common/fixes"),
        ]
        example = next((f["case"] for f in plan.fixes if KINDS[f["finding"]].shown_after_repair), None)
        if example:
            steps.append(Step("render_repaired", "render", note=f"{example} after repair",
                              args={"image": f"cases[{example!r}].image", "label": f"cases[{example!r}].label",
                                    "title": f"{example} after repair", "label_names": repr(plan.structures)}))
        steps.append(Step("judge_repaired", "judge", note="repaired image/label pairs"))
        return steps


RECIPES: list[Recipe] = []


def register(recipe_class: type[Recipe]) -> type[Recipe]:
    RECIPES.append(recipe_class())
    return recipe_class


def recipe_named(name: str) -> Recipe:
    return next(r for r in RECIPES if r.name == name)


def option_types() -> dict[str, str]:
    """Every option a user may give the offline planner (``offline:KEY=VALUE,...``) with its type as written
    ("int | None"): the Preferences every recipe reads, then each recipe's and each analysis's settings."""
    types = {f.name: f.type for f in fields(Preferences) if f.name != "settings"}
    for owner in [*RECIPES, *ANALYSES]:
        types.update({f.name: f.type for f in fields(owner.Settings)})
    return types


def preferences_from(values: dict[str, Any]) -> Preferences:
    """Preferences from options by name (as ``option_types`` lists them): the shared ones as fields, the rest as
    settings for the recipe and analyses that declare them."""
    shared = {f.name for f in fields(Preferences)} - {"settings"}
    return Preferences(**{k: v for k, v in values.items() if k in shared},
                       settings={k: v for k, v in values.items() if k not in shared})


def targets(intent: Intent, card: dict, convention: str | None) -> tuple[str | None, dict[int, str], list[str]]:
    """(anatomy, {label value: structure}, measures) from the request and the data's labels.

    A known label convention decides which value is which structure, then the names the data set gives its
    labels (dataset.json, DICOM SEG segment labels); the request names a single unnamed label at most.
    """
    values = [v for v in card.get("label_values", []) if v != 0]
    named = {int(v): name for v, name in (card.get("label_names") or {}).items() if name}
    anatomy = ANATOMY.get(convention) if convention else intent.anatomy
    if convention:
        structures = structures_of(convention)
    elif len(values) == 1:
        structures = {values[0]: named.get(values[0]) or next(iter(intent.structures), "object")}
    else:
        structures = {v: named.get(v, f"label {v}") for v in values}
    measures = list(intent.measures)
    if anatomy == "cardiac" and not measures and not intent.wants_segmentation:
        measures = ["ef", "volumes"]  # a cardiac request without details: what a cardiologist reads first
    if not convention:
        measures = [m for m in measures if m not in ("ef", "mass")]  # need to know which label is the LV
    return anatomy, structures, measures
