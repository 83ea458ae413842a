"""Cases of a data set, loaded and repaired: the data-handling steps of a generated notebook.

Fixes act in each file's own voxel space (where the judge measured them), before
both image and label are reoriented together to one convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jupyter_medagent.imaging.datacard import DataCard, load_pair
from jupyter_medagent.imaging.orientation import aligned_to, reorient
from jupyter_medagent.imaging.volume import Volume

# What each finding kind does to a case, in words for the notebook's fix table.
FIX_ACTIONS = {
    "orientation_flip": "label flipped back onto the anatomy",
    "axis_permutation": "label axes swapped back",
    "label_convention": "label values remapped to the data set's convention",
    "spacing_mismatch": "label given the image's geometry (arrays match voxel for voxel)",
    "intensity_scale": "kept: per-image z-score normalisation removes the scale",
    "interpolated_labels": "label excluded: linear interpolation eroded its boundaries; image still segmented",
    "empty_label": "label excluded: it is empty; image still segmented",
    "stray_labels": "label excluded: unexpected label values",
    "geometry_mismatch": "label excluded: it does not describe the image's voxels",
    "unreadable": "case excluded: the file cannot be read",
    "exclude": "label excluded: the quality checks still flag it after repair",
    "leakage": "kept with its duplicate, on one side of the split (never held out against itself)",
    "lossy_mask": "mask thresholded at half its maximum on reading",
}


@dataclass
class Case:
    case_id: str
    patient: str
    image: Volume
    label: Volume | None
    excluded_label: str | None = None  # why the label is not used, if it is not
    group: str | None = None  # class name for classification data (the image's sub-folder)
    phase: str | None = None  # "ED" or "ES" when the data set says so
    split: str | None = None  # "training", "validation" or "testing", as the data set gives it
    labels: list[str] | None = None  # multi-label findings, from a label table
    duplicate_of: str | None = None  # the case with the same pixels, which this one follows in any split


def load_cases(card: DataCard) -> dict[str, Case]:
    """Every readable case of the data card, as stored (not yet reoriented); a label stored in another
    orientation of the same voxels is put on its image's grid first (losslessly), as the checks saw it.

    Args:
        card: the DataCard.

    Returns:
        {case id: Case} (case_id, patient, image Volume, label Volume or None, excluded_label, group, phase).
    """
    cases = {}
    for c in card.readable:
        image, label = load_pair(c)
        if label is not None:
            label = aligned_to(image, label) or label
        cases[c.case_id] = Case(c.case_id, c.patient_id, image, label, group=c.group, phase=c.phase, split=c.split,
                                labels=c.labels)
    return cases


def fix_case(case: Case, kind: str, evidence: dict) -> str:
    """Apply the fix for one finding to ``case`` in place.

    Args:
        case: the Case (from load_cases) the finding names.
        kind: the finding's kind. Repaired: orientation_flip (evidence "flip_axis"), axis_permutation
            ("permute"), label_convention ("mapping": {old: new}), spacing_mismatch (the label takes the
            image's affine). Kept as it is: intensity_scale (per-image normalisation removes it). Dropped,
            not repaired: interpolated_labels, empty_label, stray_labels, geometry_mismatch and exclude set
            ``case.label`` to None and record why in ``case.excluded_label`` (the image is still segmented,
            so the patient still gets a measurement from the network).
        evidence: the finding's evidence dict, as check_pair/check_dataset reported it.

    Returns:
        what was done, in words, for the fix table; ValueError for a kind with no known fix.
    """
    label = case.label
    if kind == "orientation_flip":
        label.array = np.flip(label.array, axis=int(evidence["flip_axis"])).copy()
    elif kind == "axis_permutation":
        label.array = np.transpose(label.array, evidence["permute"]).copy()
    elif kind == "label_convention":
        source = np.rint(label.array).astype(np.int16)
        remapped = source.copy()
        for old, new in evidence["mapping"].items():
            remapped[source == int(old)] = int(new)
        label.array = remapped
    elif kind == "spacing_mismatch":
        label.affine = case.image.affine.copy()
    elif kind in ("interpolated_labels", "empty_label", "stray_labels", "geometry_mismatch", "exclude"):
        case.label, case.excluded_label = None, FIX_ACTIONS[kind]
    elif kind == "leakage":
        case.duplicate_of = evidence["duplicate_of"]
    elif kind not in ("intensity_scale", "lossy_mask"):
        raise ValueError(f"no fix known for finding kind {kind!r}")
    return FIX_ACTIONS[kind]


def reorient_cases(cases: dict[str, Case], axcodes=("R", "A", "S")) -> None:
    """Bring every image and label to one orientation (voxel axes permuted/flipped, never interpolated).

    Args:
        cases: {case id: Case}, changed in place.
        axcodes: the target orientation (default ("R", "A", "S")).

    Returns:
        None; labels are rounded to integers after reorientation.
    """
    for case in cases.values():
        case.image = reorient(case.image, axcodes)
        if case.label is not None:
            case.label = reorient(case.label, axcodes)
            case.label.array = np.rint(case.label.array).astype(np.int16)


def patient_split(patients: list[str], test_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split patients (never frames or slices) into training and held-out test sets.

    Args:
        patients: patient ids (card.patients).
        test_fraction: share of patients held out (at least one).
        seed: random seed; the same seed gives the same split.

    Returns:
        (training patients, test patients), each sorted.
    """
    order = np.random.default_rng(seed).permutation(sorted(patients))
    n_test = max(1, round(len(order) * test_fraction))
    return sorted(order[n_test:].tolist()), sorted(order[:n_test].tolist())
