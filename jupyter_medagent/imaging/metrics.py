"""Segmentation and clinical metrics: Dice and HD95 per structure (MONAI's), volumes, EF, mass.

Empty structures, stated once for every metric here:
- reference and prediction both empty: Dice 1.0, HD95 0.0 (nothing to find, nothing found);
- exactly one of them empty: Dice 0.0, HD95 nan (a distance to nothing is undefined).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

MYOCARDIAL_DENSITY_G_PER_ML = 1.05


def _one_hot(label: np.ndarray, value: int):
    import torch  # torch and MONAI load in seconds; only metric calls should pay for them

    return torch.from_numpy(np.asarray(label == value, dtype=np.float32))[None, None]


def _per_label(prediction, reference, labels, *, both_empty: float, one_empty: float, compute) -> dict[int, float]:
    """Apply ``compute(pred_onehot, ref_onehot)`` per label value, with the stated rule for empty structures."""
    prediction, reference = np.asarray(prediction), np.asarray(reference)
    if labels is None:
        labels = [v for v in np.union1d(np.unique(reference), np.unique(prediction)) if v != 0]
    result = {}
    for value in (int(v) for v in labels):
        p, r = _one_hot(prediction, value), _one_hot(reference, value)
        if not r.any() and not p.any():
            result[value] = both_empty
        elif not r.any() or not p.any():
            result[value] = one_empty
        else:
            result[value] = float(compute(p, r)[0, 0])
    return result


def dice_per_label(prediction, reference, labels=None) -> dict[int, float]:
    """Dice for each label value (background excluded unless listed).

    Args:
        prediction: label map (array of ints), same shape as ``reference``.
        reference: the reference label map.
        labels: the label values to score (default: every non-zero value in either map).

    Returns:
        {label value: Dice in [0, 1]}; 1.0 where both maps lack the value, 0.0 where only one has it.
    """
    from monai.metrics import compute_dice

    return _per_label(prediction, reference, labels, both_empty=1.0, one_empty=0.0,
                      compute=lambda p, r: compute_dice(p, r, include_background=True, ignore_empty=False))


def hd95_per_label(prediction, reference, spacing=None, labels=None) -> dict[int, float]:
    """95th-percentile Hausdorff distance per label, in mm when ``spacing`` is given (else voxels).

    Args:
        prediction: label map (array of ints), same shape as ``reference``.
        reference: the reference label map.
        spacing: voxel size in mm per axis (``Volume.spacing``); None measures in voxels.
        labels: the label values to score (default: every non-zero value in either map).

    Returns:
        {label value: distance}; 0.0 where both maps lack the value, NaN where only one has it.
    """
    from monai.metrics import compute_hausdorff_distance

    ndim = np.asarray(prediction).ndim
    with warnings.catch_warnings():
        # MONAI 1.5-1.6 passes its own deprecated always_return_as_numpy argument to get_mask_edges: a FutureWarning
        # about MONAI's code, not the caller's, printed in every evaluation cell.
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
        return _per_label(prediction, reference, labels, both_empty=0.0, one_empty=math.nan,
                          compute=lambda p, r: compute_hausdorff_distance(
                              p, r, include_background=True, percentile=95,
                              spacing=list(spacing)[:ndim] if spacing is not None else None))


def volumes_ml(label, spacing, labels=None) -> dict[int, float]:
    """Volume of each label value in millilitres (voxel count x voxel volume).

    Args:
        label: label map (array of ints).
        spacing: voxel size in mm (the first three axes are used).
        labels: the label values to measure (default: every non-zero value present).

    Returns:
        {label value: mL}.
    """
    label = np.asarray(label)
    voxel_ml = float(np.prod(spacing[:3])) / 1000.0
    values = labels if labels is not None else [int(v) for v in np.unique(label) if v != 0]
    return {int(v): float((label == v).sum() * voxel_ml) for v in values}


def ejection_fraction(edv_ml: float, esv_ml: float) -> float:
    """EF in percent: (EDV - ESV) / EDV x 100.

    Args:
        edv_ml: end-diastolic LV volume in mL (must be positive).
        esv_ml: end-systolic LV volume in mL.

    Returns:
        the ejection fraction in percent (a float); ValueError when ``edv_ml`` is not positive.
    """
    if edv_ml <= 0:
        raise ValueError(f"end-diastolic volume must be positive to compute an ejection fraction, got {edv_ml}")
    return (edv_ml - esv_ml) / edv_ml * 100.0


def myocardial_mass_g(myocardium_ml: float) -> float:
    """Myocardial mass from its volume (density 1.05 g/mL).

    Args:
        myocardium_ml: myocardium volume in mL (at end-diastole, by convention).

    Returns:
        the mass in grams.
    """
    return myocardium_ml * MYOCARDIAL_DENSITY_G_PER_ML
