"""Data sets for the generalisation benchmark, made on the spot (no download): MONAI's synthetic spheres."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np


def write_spheres(out: Path, cases: int = 16, size: int = 64, seed: int = 0) -> Path:
    """MONAI's tutorial data (create_test_image_3d): noisy spheres, one foreground class, isotropic 1 mm."""
    from monai.data import create_test_image_3d

    rng = np.random.RandomState(seed)
    (out / "imagesTr").mkdir(parents=True, exist_ok=True)
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    for i in range(cases):
        image, label = create_test_image_3d(size, size, size, num_seg_classes=1, channel_dim=None, random_state=rng)
        nib.save(nib.Nifti1Image(image.astype(np.float32), np.eye(4)), str(out / "imagesTr" / f"sphere{i:03d}_0000.nii.gz"))
        nib.save(nib.Nifti1Image(label.astype(np.uint8), np.eye(4)), str(out / "labelsTr" / f"sphere{i:03d}.nii.gz"))
    return out
