"""The heart's standard analysis, for any segmentation or labels of a heart with a known label convention (which
value is the LV, which the myocardium): the predicted anatomy checked, the ejection fraction against the reference
labels on held-out patients, cine volume curves for patients without labels, and EDV, ESV, SV, EF and LV mass for
every patient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupyter_medagent.plan.analyses.base import Analysis, register
from jupyter_medagent.plan.plan import Plan, Step


@dataclass
class CardiacSettings:
    ef_bar: float = 3.0  # largest mean EF error (points) against reference labels on held-out patients


@register
class Cardiac(Analysis):
    name = "cardiac"
    Settings = CardiacSettings
    checks = {"ejection_fraction": ["ef_abs_error"]}

    def applies(self, plan: Plan) -> bool:
        return plan.anatomy == "cardiac" and plan.convention is not None

    def configure(self, plan: Plan, settings: CardiacSettings, card: dict, predicts: bool) -> None:
        plan.params.update(lv_value=next((v for v, n in plan.structures.items() if n == "LV"), 0),
                           myo_value=next((v for v, n in plan.structures.items() if n == "MYO"), 0),
                           curves="{r.patient: r.measures for r in cine_results if r.measures}"
                           if unlabelled_cines(card) else "{}")
        if "ef" in plan.measures and predicts:  # the network's EF, checked against the reference labels
            plan.quality_bar["ef_abs_error"] = ["<=", settings.ef_bar]

    def prediction_checks(self, plan: Plan, card: dict) -> list[Step]:
        return [self.cell("plausibility", "Check the predicted anatomy", "Check that every prediction is anatomically "
                          "plausible: a closed myocardial ring around the LV, the RV beside it, no stray fragments.")]

    def prediction_measures(self, plan: Plan, card: dict) -> list[Step]:
        if "ef" not in plan.measures:
            return []
        steps = [self.cell("ejection_fraction", "Check the ejection fraction on held-out patients", "How far the "
                           "ejection fraction from the network's segmentations is from the one the reference labels "
                           "give, on held-out patients.")]
        cines = unlabelled_cines(card)
        if cines:
            steps.append(self.cell("cine_curves", f"Read the LV volume curves of {len(cines)} cine(s) without labels",
                                   "Patients without reference labels: every frame of their cine is segmented; the LV "
                                   "volume curve gives end-diastole (its peak), end-systole (its dip) and the ejection "
                                   "fraction, the way clinical software reads a cine."))
        steps.append(self.cell("clinical_measures", "Report EDV, ESV, SV, EF and LV mass for every patient", "The "
                               "answer, for every patient: end-diastolic and end-systolic volume, stroke volume, "
                               "ejection fraction and LV mass (myocardium x 1.05 g/mL), indexed to body surface area "
                               "where height and weight are known; the source column says where each patient's "
                               "numbers come from."))
        return steps

    def label_measures(self, plan: Plan, card: dict) -> list[Step]:
        if "ef" not in plan.measures:
            return []
        return [self.cell("ejection_fraction", "Compute LV volumes and ejection fraction per patient", "Ejection "
                          "fraction per patient: end-diastole is the frame with the larger LV cavity, end-systole the "
                          "smaller.", "ejection_fraction_from_labels")]

    def summary(self, plan: Plan, metrics: dict[str, Any]) -> str:
        summary = ""
        if "ef_abs_error" in metrics:
            summary += (f" Ejection fraction differs from the reference labels by {metrics['ef_abs_error']:.1f} points "
                        "on average.")
        if "patients_reported" in metrics:
            summary += (f" Volumes, ejection fraction and LV mass are reported for {metrics['patients_reported']} "
                        "patients, each with the source of its numbers.")
        return summary


def unlabelled_cines(card: dict) -> list[dict]:
    """Cines of patients none of whose cases has a label map (an ACDC test patient, say)."""
    labelled = {c["patient_id"] for c in card.get("cases", []) if c.get("label_path")}
    return [c for c in card.get("cines", []) if c["patient"] not in labelled]
