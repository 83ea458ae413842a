"""What every recipe is: the Recipe base class, the registry it joins with ``@register``, and the targets
(anatomy, structures, measures) that recipes read from the request and the data's labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jupyter_medagent.imaging.conventions import ANATOMY, structures_of
from jupyter_medagent.plan.compute import ComputeFingerprint
from jupyter_medagent.plan.intent import Intent
from jupyter_medagent.plan.plan import Plan, Preferences, Step

# Findings after which the repaired data is shown (the fix is visible in a picture).
SHOWN_FIXES = ("orientation_flip", "axis_permutation", "label_convention", "aligned_by_reorientation")


@dataclass
class Review:
    """What a recipe decided after a step: run steps again, log a repair, or stop."""

    rerun: list[str] = field(default_factory=list)
    repair: dict[str, str] | None = None  # {"rule", "cell", "error", "fix"}
    fail: str | None = None


class Recipe:
    name = ""
    templates = ""  # this recipe's folder under plan/templates

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
                      "and fixed random seeds, so every re-run gives the same numbers.", "common/setup"),
            self.cell("datacard", "Describe the data (data card)", "The data card: every case with its size, voxel "
                      "spacing, orientation, intensity range and label values.", "common/datacard"),
            self.cell("quality_checks", f"Run the quality checks ({n} finding(s) so far)", "Quality checks that need no "
                      "model: geometry, label values, whether each label sits on the anatomy it claims, conventions, "
                      "intensity scales.", "common/quality_checks"),
            Step("judge_raw", "judge", note="raw data quality"),
            self.cell("fixes", "Repair or exclude what the checks flag, then check again", fixes_note, "common/fixes"),
        ]
        example = next((f["case"] for f in plan.fixes if f["finding"] in SHOWN_FIXES), None)
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
