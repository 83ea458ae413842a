"""The finding kinds, as one table: what each kind means, how severe it usually is, what the fixes cell does
about it and whether the repaired data is shown. The quantitative judge, the VLM judge, the phantom's pitfall
manifest, the planner (which findings the fixes cell handles) and the notebook helpers (what the fix table says,
which repairs are shown in a picture) all read it.

A new kind is a new row; nothing else needs to change unless it needs a repair no existing action does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "error"]
# What the fixes cell does about a finding (``pipelines.cases.fix_case`` implements each one):
#   flip_label, permute_label, remap_label, take_image_geometry: repair the label in its own voxel space;
#   keep: nothing to change in the data (a later step or the reader handles it);
#   exclude_label: the label is not used, the image still is (segmented, not scored);
#   follow_duplicate: the case goes to the same side of the split as its duplicate;
#   elsewhere: not listed in the fixes cell, because reading the data or a later step handles it (``done`` says which).
FixAction = Literal["flip_label", "permute_label", "remap_label", "take_image_geometry", "keep", "exclude_label",
                    "follow_duplicate", "elsewhere"]
Scope = Literal["data", "layout", "predictions"]


@dataclass(frozen=True)
class FindingKind:
    about: str  # what the finding means, for the reader and the VLM judge
    severity: Severity  # how severe it usually is (a check may report a milder or graver case)
    scope: Scope  # what is checked: images and labels, the folder's layout, or a network's predictions
    fix: FixAction | None = None  # what the fixes cell does; None: not fixable, the label is excluded
    done: str = ""  # what was done, in words for the fix table
    shown_after_repair: bool = False  # the repair is visible: the repaired case is shown in a picture
    planted: bool = False  # the synthetic 3D phantom can plant it (its pitfall manifest uses the same name)


# A finding the quality checks still report after the repairs, or a kind with no fix: the label is excluded.
EXCLUDED = "label excluded: the quality checks still flag it after repair"

KINDS: dict[str, FindingKind] = {
    # ----- pitfalls the 3D phantom plants
    "orientation_flip": FindingKind("the label is flipped along an axis against its image", "error", "data",
                                    "flip_label", "label flipped back onto the anatomy", True, True),
    "axis_permutation": FindingKind("the label's axes are stored in another order than its image's", "error", "data",
                                    "permute_label", "label axes swapped back", True, True),
    "label_convention": FindingKind("label values follow another convention than the data set's", "error", "data",
                                    "remap_label", "label values remapped to the data set's convention", True, True),
    "intensity_scale": FindingKind("an image's intensities are on another scale than the others'", "warning", "data",
                                   "keep", "kept: per-image z-score normalisation removes the scale", planted=True),
    "interpolated_labels": FindingKind("the label was resampled with linear interpolation (fractional values)",
                                       "error", "data", "exclude_label", "label excluded: linear interpolation eroded "
                                       "its boundaries; image still segmented", planted=True),
    "empty_label": FindingKind("the label map contains only background", "error", "data", "exclude_label",
                               "label excluded: it is empty; image still segmented", planted=True),
    "spacing_mismatch": FindingKind("image and label state different voxel spacings for the same voxels", "error",
                                    "data", "take_image_geometry",
                                    "label given the image's geometry (arrays match voxel for voxel)", planted=True),
    # ----- further data findings
    "geometry_mismatch": FindingKind("image and label disagree in shape, affine or origin", "error", "data",
                                     "exclude_label", "label excluded: it does not describe the image's voxels"),
    "stray_labels": FindingKind("label values outside the expected set", "error", "data", "exclude_label",
                                "label excluded: unexpected label values"),
    # a network's predictions (check_prediction, the VLM judge)
    "implausible_anatomy": FindingKind("e.g. myocardium not a ring around the LV, RV not beside it", "warning",
                                       "predictions"),
    "fragmented": FindingKind("a structure in several disconnected pieces", "warning", "predictions"),
    "missing_structure": FindingKind("an expected structure absent from a prediction", "error", "predictions"),
    "unreadable": FindingKind("a file that could not be loaded", "error", "data", "elsewhere",
                              "case excluded: the file cannot be read"),
    "aligned_by_reorientation": FindingKind("image and label stored in different orientations of the same voxels "
                                            "(put on one grid losslessly on reading)", "info", "data", "elsewhere",
                                            "label put on its image's grid on reading (no interpolation)"),
    "damaged_layout": FindingKind("the folder's layout is broken: a named frame missing, a CSV row missing, a SEG "
                                  "without its series", "warning", "layout"),
    # ----- what an expert checks in a 2D data set (judge/pictures.py); the 2D phantom plants the first five
    "leakage": FindingKind("the same picture in the training and the test split (or under two names)", "warning",
                           "data", "follow_duplicate",
                           "kept with its duplicate, on one side of the split (never held out against itself)"),
    "lossy_mask": FindingKind("a mask with grey levels (saved as JPEG)", "warning", "data", "keep",
                              "mask thresholded at half its maximum on reading"),
    "mixed_channels": FindingKind("grayscale and RGB pictures in one data set (matched on reading)", "info", "data",
                                  "elsewhere", "kept: every picture is brought to the channels most pictures have"),
    "monochrome1": FindingKind("a radiograph stored inverted (MONOCHROME1), inverted on reading", "info", "data",
                               "elsewhere", "kept: inverted on reading"),
    "class_imbalance": FindingKind("one class several times as frequent as another", "info", "data", "elsewhere",
                                   "kept: classes weighted by the inverse of their frequency"),
    "small_validation": FindingKind("a given validation split too small to trust", "info", "data", "elsewhere",
                                    "kept: a validation split is drawn again from the training patients"),
    "mask_encoding": FindingKind("masks stored as 0/255 (read as 0/1), or stored differently across the data set",
                                 "info", "data", "elsewhere", "kept: masks read as 0/1"),
    "patients_from_names": FindingKind("patient ids taken from the file names, so splits are by patient", "info",
                                       "data", "elsewhere", "kept: splits are by the patient ids from the names"),
}

FINDING_KINDS = tuple(KINDS)
PITFALL_KINDS = tuple(name for name, kind in KINDS.items() if kind.planted)


def fixable(kind: str) -> bool:
    """Whether the fixes cell handles ``kind`` itself (else it excludes the label)."""
    return kind in KINDS and KINDS[kind].fix not in (None, "elsewhere")


def listed_in_fixes(finding: dict[str, Any]) -> bool:
    """Whether the fixes cell lists ``finding`` (a notice, or a kind reading the data handles, is not listed)."""
    kind = KINDS.get(finding["kind"])
    return finding["severity"] != "info" and not (kind and kind.fix == "elsewhere")


def fix_action(kind: str) -> FixAction | None:
    """What the fixes cell does about ``kind``, or None when it does nothing itself ("exclude", the fixes cell's word
    for a finding no fix handles, excludes the label)."""
    if kind == "exclude":
        return "exclude_label"
    return KINDS[kind].fix if fixable(kind) else None


def fix_done(kind: str) -> str:
    """What was done about ``kind``, for the fix table."""
    return KINDS[kind].done if fixable(kind) else EXCLUDED


@dataclass
class Finding:
    case: str
    kind: str
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}; expected one of {FINDING_KINDS}")

    def to_dict(self) -> dict[str, Any]:
        """The finding as a plain dict.

        Returns:
            {"case", "kind", "severity", "message", "evidence"}.
        """
        return asdict(self)
