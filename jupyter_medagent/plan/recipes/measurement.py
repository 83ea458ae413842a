"""Measurement recipe: volumes (and the ejection fraction for the heart) straight from the given labels,
after the quality checks have repaired or excluded what cannot be trusted. No model is trained."""

from __future__ import annotations

from typing import Any

from jupyter_medagent.plan.compute import ComputeFingerprint
from jupyter_medagent.plan.intent import Intent
from jupyter_medagent.plan.plan import Plan, Preferences
from jupyter_medagent.plan.recipes.base import Recipe, register, targets


@register
class Measurement(Recipe):
    name = "measurement"
    templates = "measurement"

    def applies(self, intent: Intent, card: dict, compute: ComputeFingerprint, convention: str | None,
                preferences: Preferences) -> str | None:
        if not card.get("n_labelled") or not [v for v in card.get("label_values", []) if v != 0]:
            return None
        every_case_labelled = card["n_labelled"] == card["n_cases"]
        if intent.from_given_labels or (intent.task_types == ["measurement"] and every_case_labelled):
            return "the request asks for measurements from the existing labels, so no model is trained"
        # A quantity asked for ("how much brain, in millilitres"), nothing named to segment or classify, no
        # anatomy with a standard analysis, and every image has its mask: there is no unlabelled image a network
        # could add anything to, so the masks are what is measured.
        if intent.measures and set(intent.task_types) <= {"measurement"} and not intent.anatomy and every_case_labelled:
            return ("every image comes with its mask and the request asks for a quantity, not a segmentation: the "
                    "masks are measured, no model is trained")
        return None

    def build(self, plan: Plan, card: dict, intent: Intent, convention: str | None) -> None:
        plan.anatomy, plan.structures, plan.measures = targets(intent, card, convention)
        plan.convention = convention if plan.anatomy else None
        plan.params.update(structures=repr(plan.structures),
                           convention_arg=f", convention={plan.convention!r}" if plan.convention else "",
                           lv_value=next((v for v, n in plan.structures.items() if n == "LV"), 0),
                           myo_value=next((v for v, n in plan.structures.items() if n == "MYO"), 0))
        plan.steps = self.data_steps(plan) + [
            self.cell("volumes", "Measure volumes per structure from the labels", "Volume of each structure in every "
                      "case, from the repaired labels (voxel count x voxel volume)."),
        ]
        if "ef" in plan.measures and plan.convention:
            plan.steps.append(self.cell("ejection_fraction", "Compute LV volumes and ejection fraction per patient",
                                        "Ejection fraction per patient: end-diastole is the frame with the larger LV "
                                        "cavity, end-systole the smaller."))

    def outcome(self, plan: Plan, metrics: dict[str, Any]) -> tuple[str, str]:
        if not metrics.get("cases_measured"):
            return "failed", ("No case could be measured: every label map was missing or had to be excluded (see the "
                              "fix table and the quality checks).")
        return "solved", (f"Measured the structures from the repaired labels; {len(plan.fixes)} data problem(s) were "
                          "found and handled (see the fix table).")
