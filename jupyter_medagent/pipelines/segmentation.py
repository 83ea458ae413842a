"""Slice-wise (2D) and volume (3D) segmentation helpers for generated notebooks.

The notebook keeps the choices a reader wants to see (network, loss, transforms,
split, number of steps) in its own cells; these functions do the bookkeeping.
"""

from __future__ import annotations

import numpy as np
import torch

from jupyter_medagent.pipelines.cases import Case


def zscore(image: np.ndarray) -> np.ndarray:
    """Per-image z-score: MRI intensities have no absolute unit, so each image is normalised on its own."""
    data = image.astype(np.float32)
    return (data - data.mean()) / (data.std() + 1e-6)


def common_plane_size(cases: list[Case], multiple: int = 16) -> tuple[int, int]:
    """The in-plane size every slice is padded or cropped to (largest one, rounded up for the UNet's strides)."""
    largest = np.max([c.image.shape[:2] for c in cases], axis=0)
    return tuple(int(np.ceil(s / multiple) * multiple) for s in largest)


def _fit(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-pad or centre-crop a 2D plane to ``size`` (pad value: the plane's minimum)."""
    out = np.full(size, plane.min(), dtype=plane.dtype)
    src = [slice(max(0, (s - t) // 2), max(0, (s - t) // 2) + min(s, t)) for s, t in zip(plane.shape, size)]
    dst = [slice(max(0, (t - s) // 2), max(0, (t - s) // 2) + min(s, t)) for s, t in zip(plane.shape, size)]
    out[tuple(dst)] = plane[tuple(src)]
    return out


def slice_dataset(cases: list[Case], size: tuple[int, int]) -> list[dict[str, np.ndarray]]:
    """One {"image", "label"} item per short-axis slice, channel-first, as MONAI dictionary transforms expect."""
    items = []
    for case in cases:
        image = zscore(case.image.array)
        label = np.rint(case.label.array).astype(np.int64)
        for k in range(image.shape[2]):
            items.append({"image": _fit(image[..., k], size)[None], "label": _fit(label[..., k], size)[None]})
    return items


@torch.no_grad()
def predict_volume_2d(model: torch.nn.Module, image: np.ndarray, size: tuple[int, int], batch: int = 16) -> np.ndarray:
    """Segment a volume slice by slice; returns a label map of the image's own shape."""
    model.eval()
    volume = zscore(image)
    planes = np.stack([_fit(volume[..., k], size) for k in range(volume.shape[2])])[:, None]
    labels = []
    for start in range(0, len(planes), batch):
        logits = model(torch.from_numpy(planes[start : start + batch]))
        labels.append(logits.argmax(dim=1).numpy().astype(np.int16))
    stacked = np.concatenate(labels)  # (slices, H, W)
    return np.stack([_fit(plane, image.shape[:2]) for plane in stacked], axis=-1)


def keep_largest_component(label: np.ndarray, values) -> np.ndarray:
    """Keep only the largest 3D connected piece of each label value; stray fragments become background."""
    from scipy import ndimage

    out = label.copy()
    for value in values:
        pieces, n = ndimage.label(label == value)
        if n > 1:
            sizes = np.bincount(pieces.ravel())[1:]
            out[(pieces > 0) & (pieces != int(np.argmax(sizes)) + 1)] = 0
    return out
