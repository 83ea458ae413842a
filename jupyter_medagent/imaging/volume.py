"""One volume type for every loader: the array plus the geometry that gives it meaning."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nibabel as nib
import numpy as np


@dataclass
class Volume:
    """A 3D (or 4D) image in voxel order with its voxel-to-world affine (RAS+ mm, as nibabel).

    ``meta`` only ever holds non-identifying metadata (modality, series description,
    rescale applied, ...): identifying DICOM tags never enter it, so a Volume's
    metadata may be shown to a model.
    """

    array: np.ndarray
    affine: np.ndarray
    path: str = ""
    modality: str | None = None  # "CT", "MR", ... when the file says so
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(float(s) for s in nib.affines.voxel_sizes(self.affine))

    @property
    def orientation(self) -> tuple[str, ...]:
        """Axis codes such as ('R', 'A', 'S'), the direction each voxel axis points to."""
        return tuple(nib.aff2axcodes(self.affine))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)
