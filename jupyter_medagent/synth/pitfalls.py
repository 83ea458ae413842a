"""Silent data errors planted into the synthetic phantom, one kind per case file.

Each function reproduces a mistake seen in real data sets; none of them raises when
the data is loaded, which is what makes them dangerous.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from jupyter_medagent.judge.findings import PITFALL_KINDS

# ACDC (1 RV, 2 MYO, 3 LV) -> M&Ms (1 LV, 2 MYO, 3 RV): the RV and LV values swap.
ACDC_TO_MNMS = {1: 3, 2: 2, 3: 1}


def parse_pitfall_kinds(pitfalls: str | list[str]) -> tuple[str, ...]:
    if isinstance(pitfalls, str):
        if pitfalls in ("", "none"):
            return ()
        if pitfalls == "all":
            return PITFALL_KINDS
        pitfalls = [p.strip() for p in pitfalls.split(",") if p.strip()]
    unknown = [p for p in pitfalls if p not in PITFALL_KINDS]
    if unknown:
        raise ValueError(f"unknown pitfall kind(s) {unknown}; choose from {', '.join(PITFALL_KINDS)}, 'all' or 'none'")
    return tuple(pitfalls)


def plan_pitfalls(case_ids: list[str], kinds: tuple[str, ...], rng: np.random.Generator) -> dict[str, str]:
    """Choose which case gets which pitfall: each kind twice when the data set is large enough
    (once otherwise), one kind per case, and always a clean majority."""
    if not kinds:
        return {}
    max_planted = (len(case_ids) - 1) // 2  # strictly fewer than half the cases
    per_kind = 2 if 2 * len(kinds) <= max_planted else 1
    wanted = [k for k in kinds for _ in range(per_kind)][:max_planted]
    chosen = rng.choice(len(case_ids), size=len(wanted), replace=False)
    return {case_ids[i]: kind for i, kind in zip(sorted(chosen), wanted)}


def plant(kind: str, image: np.ndarray, label: np.ndarray, affine: np.ndarray, rng: np.random.Generator):
    """Return (image, label, image_affine, label_affine, file_touched) with the pitfall applied."""
    image_affine, label_affine = affine.copy(), affine.copy()
    if kind == "orientation_flip":
        label = np.flip(label, axis=int(rng.integers(0, 2))).copy()
        return image, label, image_affine, label_affine, "label"
    if kind == "axis_permutation":
        return image, label.transpose(1, 0, 2).copy(), image_affine, label_affine, "label"
    if kind == "label_convention":
        remapped = np.zeros_like(label)
        for acdc, mnms in ACDC_TO_MNMS.items():
            remapped[label == acdc] = mnms
        return image, remapped, image_affine, label_affine, "label"
    if kind == "intensity_scale":
        # Exported by another tool: floats scaled by 1000, or squeezed into 0..1.
        factor = 1000.0 if rng.random() < 0.5 else 1.0 / float(image.max())
        return (image.astype(np.float32) * factor), label, image_affine, label_affine, "image"
    if kind == "interpolated_labels":
        # Resampled to a finer grid and back with linear interpolation: fractional values, eroded rims.
        fine = ndimage.zoom(label.astype(np.float32), (1.6, 1.6, 1), order=1)
        back = ndimage.zoom(fine, np.array(label.shape) / np.array(fine.shape), order=1)
        return image, back.astype(np.float32), image_affine, label_affine, "label"
    if kind == "empty_label":
        return image, np.zeros_like(label), image_affine, label_affine, "label"
    if kind == "spacing_mismatch":
        # The label header claims another voxel size (e.g. written with a default 1 mm or 10 mm slices).
        label_affine[:3, :3] = label_affine[:3, :3] @ np.diag([1.0 / abs(affine[0, 0]), 1.0 / abs(affine[1, 1]), 10.0 / abs(affine[2, 2])])
        return image, label, image_affine, label_affine, "label"
    raise ValueError(f"unknown pitfall kind {kind!r}")
