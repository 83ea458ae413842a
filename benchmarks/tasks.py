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


def write_lesions(out: Path, cases_per_class: int = 40, size: int = 32, seed: int = 0) -> Path:
    """Classification data: noisy volumes with a few soft blobs; the 'lesion' class also holds a small bright one.

    Layout ``out/normal/*.nii.gz`` and ``out/lesion/*.nii.gz``: the class is the sub-folder.
    """
    rng = np.random.default_rng(seed)
    grid = np.indices((size, size, size)).astype(np.float32)
    for name in ("normal", "lesion"):
        (out / name).mkdir(parents=True, exist_ok=True)
        for i in range(cases_per_class):
            volume = rng.normal(0.0, 0.25, (size, size, size)).astype(np.float32)
            for _ in range(rng.integers(2, 5)):  # soft anatomy-like blobs in both classes
                centre, radius = rng.uniform(6, size - 6, 3), rng.uniform(3, 6)
                volume += 0.6 * np.exp(-((grid - centre[:, None, None, None]) ** 2).sum(0) / (2 * radius**2))
            if name == "lesion":
                centre, radius = rng.uniform(5, size - 5, 3), rng.uniform(1.5, 2.5)
                volume += 1.5 * (((grid - centre[:, None, None, None]) ** 2).sum(0) <= radius**2)
            nib.save(nib.Nifti1Image(volume, np.eye(4)), str(out / name / f"{name}{i:03d}.nii.gz"))
    return out
