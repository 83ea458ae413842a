"""Reorienting volumes by permuting and flipping voxel axes: no interpolation, so labels stay exact."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from jupyter_medagent.imaging.volume import Volume


def reorient(volume: Volume, axcodes: tuple[str, ...] = ("R", "A", "S")) -> Volume:
    """Permute/flip voxel axes so they point along ``axcodes``. No interpolation, so labels stay exact.

    Args:
        volume: the Volume to reorient.
        axcodes: target orientation, one letter per axis (default ("R", "A", "S")).

    Returns:
        a new Volume with the array permuted/flipped and the affine to match.
    """
    target = nib.orientations.axcodes2ornt(axcodes)
    return _apply_ornt(volume, target)


def reorient_like(volume: Volume, reference: Volume) -> Volume:
    """``volume`` with its voxel axes permuted/flipped to the orientation of ``reference`` (lossless)."""
    return _apply_ornt(volume, nib.orientations.io_orientation(reference.affine))


def aligned_to(image: Volume, label: Volume) -> Volume | None:
    """``label`` on ``image``'s voxel grid when the two are the same voxels stored in different orientations
    (an axis flip or permutation in the header, as exporters do), else None. Lossless: axes are only
    permuted and flipped."""
    tolerance = 1e-2 * min(image.spacing[:3])
    if label.shape[:3] == image.shape[:3] and np.allclose(label.affine, image.affine, atol=tolerance):
        return None  # already on the same grid
    if nib.aff2axcodes(label.affine) == nib.aff2axcodes(image.affine):
        return None  # same orientation, so the difference is not one reorientation can undo
    candidate = reorient_like(label, image)
    if candidate.shape[:3] == image.shape[:3] and np.allclose(candidate.affine, image.affine, atol=tolerance):
        return candidate
    return None


def _apply_ornt(volume: Volume, target: np.ndarray) -> Volume:
    current = nib.orientations.io_orientation(volume.affine)
    transform = nib.orientations.ornt_transform(current, target)
    spatial = volume.array.shape[:3]
    array = nib.orientations.apply_orientation(volume.array, transform)
    affine = volume.affine @ nib.orientations.inv_ornt_aff(transform, spatial)
    return Volume(np.ascontiguousarray(array), affine, volume.path, volume.modality, dict(volume.meta))
