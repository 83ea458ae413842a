"""Segmentation bookkeeping for generated notebooks: training items and whole-volume prediction.

The notebook keeps the choices a reader wants to see (network, loss, the MONAI transforms that normalise
and pad, split, number of steps) in its own cells and passes them in; these functions only do the
bookkeeping around them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from jupyter_medagent.pipelines.cases import Case

Transform = Callable[[np.ndarray], np.ndarray]  # a MONAI array transform on a channel-first image


def normalised(image: np.ndarray, normalise: Transform) -> np.ndarray:
    """A whole volume through the notebook's normalisation, channel first.

    Args:
        image: the volume's array (X, Y, Z), or (X, Y, Z, C) for an image with its channels in the 4th dimension
            (an RGB picture).
        normalise: the MONAI array transform (channel first).

    Returns:
        float32 array of shape (1, X, Y, Z), or (C, X, Y, Z).
    """
    array = np.asarray(image, dtype=np.float32)
    array = np.moveaxis(array, 3, 0) if array.ndim == 4 else array[None]
    return np.asarray(normalise(array), dtype=np.float32)


def slice_items(cases: list[Case], normalise: Transform) -> list[dict[str, np.ndarray]]:
    """One {"image", "label"} item per short-axis slice, channel first, for MONAI dictionary transforms.

    Each volume is normalised as a whole before it is sliced, so all slices of a volume share one scale.

    Args:
        cases: Cases with labels (a case without a label cannot train).
        normalise: the MONAI array transform (channel first).

    Returns:
        list of {"image": (1, X, Y) float32, "label": (1, X, Y) int64}.
    """
    items = []
    for case in cases:
        image = normalised(case.image.array, normalise)
        label = np.rint(case.label.array).astype(np.int64)[None]
        items += [{"image": image[..., k], "label": label[..., k]} for k in range(image.shape[-1])]
    return items


def volume_items(cases: list[Case], normalise: Transform) -> list[dict[str, np.ndarray]]:
    """One {"image", "label"} item per volume, channel first, for 3D training.

    Args:
        cases: Cases with labels.
        normalise: the MONAI array transform (channel first).

    Returns:
        list of {"image": (1, X, Y, Z) float32, "label": (1, X, Y, Z) int64}.
    """
    return [{"image": normalised(c.image.array, normalise), "label": np.rint(c.label.array).astype(np.int64)[None]}
            for c in cases]


def foreground_percentiles(cases: list[Case], percentiles=(0.5, 99.5), max_samples: int = 1_000_000) -> tuple[float, ...]:
    """Intensity percentiles inside the labelled structures of ``cases`` (nnU-Net's CT window).

    Args:
        cases: Cases with labels.
        percentiles: the percentiles to return (default (0.5, 99.5)).
        max_samples: foreground voxels sampled at most (for speed).

    Returns:
        tuple of intensities, one per percentile.
    """
    values = np.concatenate([np.asarray(c.image.array)[np.asarray(c.label.array) > 0].ravel() for c in cases
                             if c.label is not None])
    if values.size == 0:
        raise ValueError("no labelled voxels to derive an intensity window from")
    values = values[:: max(1, values.size // max_samples)]
    return tuple(float(v) for v in np.percentile(values, percentiles))


@torch.no_grad()
def predict_volume(model: torch.nn.Module, image: np.ndarray, normalise: Transform, patch, *, device="cpu",
                   amp: bool = False, batch: int = 16) -> np.ndarray:
    """Label map with ``image``'s shape: normalised as in training, then MONAI's sliding-window inference with
    the training patch (slice by slice for a 2D patch, over the whole volume for a 3D one), on ``device``.

    Volumes larger than the patch are covered by overlapping windows; smaller ones are padded and cropped back.

    Args:
        model: the trained network.
        image: the volume's array (X, Y, Z).
        normalise: the normalisation transform used in training.
        patch: the training patch size (2 entries: slice by slice, 3: whole volume).
        device: "cpu" or "cuda".
        amp: bfloat16 autocast on the device.
        batch: slices per forward pass (2D patch).

    Returns:
        int16 label map of ``image``'s shape.
    """
    from monai.inferers import sliding_window_inference

    model.eval()
    device = torch.device(device)
    volume = torch.from_numpy(normalised(image, normalise))  # (1, X, Y, Z)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
        if len(patch) == 2:
            slices = volume.permute(3, 0, 1, 2)  # (Z, 1, X, Y): the slices of the volume form the batch
            labels = [sliding_window_inference(slices[i : i + batch].to(device), roi_size=tuple(patch), sw_batch_size=batch,
                                               predictor=model, overlap=0.25).argmax(1).cpu()
                      for i in range(0, len(slices), batch)]
            out = torch.cat(labels).permute(1, 2, 0)
        else:
            logits = sliding_window_inference(volume[None].to(device), roi_size=tuple(patch), sw_batch_size=2,
                                              predictor=model, overlap=0.25, mode="gaussian")
            out = logits.argmax(1)[0].cpu()
    return np.asarray(out, dtype=np.int16)


def keep_largest_component(label: np.ndarray, values) -> np.ndarray:
    """Keep only the largest 3D connected piece of each label value; stray fragments become background.

    Args:
        label: label map (array of ints).
        values: the label values to clean.

    Returns:
        a cleaned copy of ``label``.
    """
    from scipy import ndimage

    out = label.copy()
    for value in values:
        pieces, n = ndimage.label(label == value)
        if n > 1:
            sizes = np.bincount(pieces.ravel())[1:]
            out[(pieces > 0) & (pieces != int(np.argmax(sizes)) + 1)] = 0
    return out
