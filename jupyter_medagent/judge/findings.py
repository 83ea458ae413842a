"""The one vocabulary of findings shared by the quantitative judge, the VLM judge,
the phantom's pitfall manifest and the offline planner's repair rules."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# Pitfalls the synthetic phantom can plant; the judge reports them under the same names.
PITFALL_KINDS = (
    "orientation_flip",
    "axis_permutation",
    "label_convention",
    "intensity_scale",
    "interpolated_labels",
    "empty_label",
    "spacing_mismatch",
)

# Further finding kinds that are not planted pitfalls.
OTHER_KINDS = (
    "geometry_mismatch",  # shape/affine/origin disagreement between image and label
    "stray_labels",  # label values outside the expected set
    "implausible_anatomy",  # e.g. myocardium not a ring around the LV, RV not beside it
    "fragmented",  # a structure in several disconnected pieces
    "missing_structure",  # an expected structure absent from a prediction
    "unreadable",  # a file that could not be loaded
    "damaged_layout",  # the folder's layout is broken: a named frame missing, a CSV row missing, a SEG without its series
    "aligned_by_reorientation",  # image and label stored in different orientations of the same voxels (a note)
)

# What an expert checks in a 2D data set before training (judge/pictures.py); the 2D phantom plants the first five.
PICTURE_KINDS = (
    "leakage",  # the same picture in the training and the test split (or under two names)
    "lossy_mask",  # a mask with grey levels (saved as JPEG): thresholded, and said so
    "mixed_channels",  # grayscale and RGB pictures in one data set
    "monochrome1",  # a radiograph stored inverted (MONOCHROME1), inverted on reading
    "class_imbalance",  # one class several times as frequent as another
    "small_validation",  # a given validation split too small to trust
    "mask_encoding",  # masks stored as 0/255 (read as 0/1), or stored differently across the data set
    "patients_from_names",  # patient ids taken from the file names, so splits are by patient
)

FINDING_KINDS = PITFALL_KINDS + OTHER_KINDS + PICTURE_KINDS

Severity = Literal["info", "warning", "error"]


@dataclass
class Finding:
    case: str
    kind: str
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FINDING_KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}; expected one of {FINDING_KINDS}")

    def to_dict(self) -> dict[str, Any]:
        """The finding as a plain dict.

        Returns:
            {"case", "kind", "severity", "message", "evidence"}.
        """
        return asdict(self)
