"""Clinical measures per patient from any source of label maps (reference or prediction)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from jupyter_medagent.imaging.metrics import ejection_fraction, volumes_ml
from jupyter_medagent.pipelines.cases import Case


def ef_by_patient(cases: list[Case], label_of: Callable[[Case], np.ndarray | None], lv: int) -> dict[str, dict]:
    """LV EDV, ESV (mL) and EF (%) per patient with two labelled frames.

    End-diastole is the frame with the larger LV cavity and end-systole the smaller, which
    holds whatever the files are called.
    """
    by_patient: dict[str, list[tuple[float, Case]]] = {}
    for case in cases:
        label = label_of(case)
        if label is not None:
            volume = volumes_ml(label, case.image.spacing[:3], labels=[lv])[lv]
            by_patient.setdefault(case.patient, []).append((volume, case))
    result = {}
    for patient, frames in sorted(by_patient.items()):
        if len(frames) < 2:
            continue
        volumes = sorted(v for v, _ in frames)
        edv, esv = volumes[-1], volumes[0]
        if edv > 0:
            result[patient] = {"edv_ml": edv, "esv_ml": esv, "ef_percent": ejection_fraction(edv, esv)}
    return result
