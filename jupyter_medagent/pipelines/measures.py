"""Clinical measures per patient from any source of label maps (reference or prediction) or from a cine's
volume curve: EDV, ESV, SV, EF, LV mass, and the same indexed to body surface area when height and weight
are known (ACDC's Info.cfg)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from jupyter_medagent.imaging.metrics import ejection_fraction, myocardial_mass_g, volumes_ml
from jupyter_medagent.pipelines.cases import Case

MEASURE_COLUMNS = ["EDV (mL)", "ESV (mL)", "SV (mL)", "EF (%)", "LV mass (g)", "BSA (m²)", "EDVi (mL/m²)",
                   "LV mass i (g/m²)"]


def body_surface_area(height_cm: float, weight_kg: float) -> float:
    """Mosteller's formula, in m².

    Args:
        height_cm: height in centimetres.
        weight_kg: weight in kilograms.

    Returns:
        the body surface area in m².
    """
    return math.sqrt(height_cm * weight_kg / 3600.0)


def clinical_measures(edv_ml: float, esv_ml: float, myo_ed_ml: float | None = None,
                      metadata: dict | None = None) -> dict[str, float]:
    """EDV, ESV, SV, EF, LV mass (myocardium at ED x 1.05 g/mL), and BSA-indexed values.

    Args:
        edv_ml: end-diastolic LV volume in mL.
        esv_ml: end-systolic LV volume in mL.
        myo_ed_ml: myocardium volume at ED in mL; None leaves out the mass.
        metadata: the patient's Info with Height (cm) and Weight (kg) for indexed values; None for none.

    Returns:
        {"edv_ml", "esv_ml", "sv_ml", "ef_percent"} plus "lv_mass_g" with ``myo_ed_ml``, and "bsa_m2",
        "edvi_ml_m2", "esvi_ml_m2", "svi_ml_m2" ("lv_mass_index_g_m2") with height and weight.
    """
    out = {"edv_ml": edv_ml, "esv_ml": esv_ml, "sv_ml": edv_ml - esv_ml, "ef_percent": ejection_fraction(edv_ml, esv_ml)}
    if myo_ed_ml is not None:
        out["lv_mass_g"] = myocardial_mass_g(myo_ed_ml)
    metadata = metadata or {}
    if metadata.get("Height") and metadata.get("Weight"):
        bsa = body_surface_area(float(metadata["Height"]), float(metadata["Weight"]))
        out.update(bsa_m2=bsa, edvi_ml_m2=edv_ml / bsa, esvi_ml_m2=esv_ml / bsa, svi_ml_m2=(edv_ml - esv_ml) / bsa)
        if myo_ed_ml is not None:
            out["lv_mass_index_g_m2"] = out["lv_mass_g"] / bsa
    return out


def ef_by_patient(cases: list[Case], label_of: Callable[[Case], np.ndarray | None], lv: int, myo: int | None = None,
                  metadata: dict[str, dict] | None = None) -> dict[str, dict]:
    """Clinical measures per patient with two labelled frames.

    End-diastole and end-systole are the frames the data set names (ED/ES); where it names none, the frame
    with the larger LV cavity is ED and the smaller ES, which holds whatever the files are called.

    Args:
        cases: the Cases to measure (several frames per patient).
        label_of: case -> its label map (array) or None; a patient with fewer than two frames that have a
            label is left out, so measure excluded labels from a network's prediction instead.
        lv: the LV cavity's label value.
        myo: the myocardium's label value, for the LV mass; None leaves it out.
        metadata: {patient: Info} (Height, Weight) for BSA-indexed values.

    Returns:
        {patient: clinical_measures(...)} (keys edv_ml, esv_ml, sv_ml, ef_percent, ...), sorted by patient;
        report the EF as {patient: m["ef_percent"]} under a key of the metric vocabulary (ef_percent).
    """
    by_patient: dict[str, list[tuple[float, float | None, Case]]] = {}
    for case in cases:
        label = label_of(case)
        if label is not None:
            spacing = case.image.spacing[:3]
            ml = volumes_ml(label, spacing, labels=[lv] + ([myo] if myo else []))
            by_patient.setdefault(case.patient, []).append((ml[lv], ml.get(myo) if myo else None, case))
    result = {}
    for patient, frames in sorted(by_patient.items()):
        if len(frames) < 2:
            continue
        phases = {c.phase: (v, m) for v, m, c in frames if c.phase}
        if "ED" in phases and "ES" in phases:
            (edv, myo_ed), (esv, _) = phases["ED"], phases["ES"]
        else:
            ordered = sorted(frames, key=lambda f: f[0])
            (esv, _, _), (edv, myo_ed, _) = ordered[0], ordered[-1]
        if edv > 0:
            result[patient] = clinical_measures(edv, esv, myo_ed, (metadata or {}).get(patient))
    return result


def measure_row(patient: str, source: str, m: dict[str, float]) -> list[str]:
    """One row of the per-patient table (columns: patient, source, then MEASURE_COLUMNS).

    Args:
        patient: the patient id.
        source: where the numbers come from ("given labels", "network", ...).
        m: the patient's clinical_measures(...) dict.

    Returns:
        list of formatted strings ("—" for a measure that is absent).
    """
    def fmt(key):
        return f"{m[key]:.1f}" if key in m else "—"

    return [patient, source] + [fmt(k) for k in ("edv_ml", "esv_ml", "sv_ml", "ef_percent", "lv_mass_g")] + \
        [f"{m['bsa_m2']:.2f}" if "bsa_m2" in m else "—", fmt("edvi_ml_m2"), fmt("lv_mass_index_g_m2")]
