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

FINDING_KINDS = PITFALL_KINDS + OTHER_KINDS

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
