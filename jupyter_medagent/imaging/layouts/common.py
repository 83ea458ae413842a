"""What every layout reports: cases (image and label sources, phase, patient), cines, patient metadata,
and findings about the layout itself; and the naming rules shared by all layouts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mgz", ".mgh", ".img", ".seg.nrrd", ".nrrd", ".nhdr", ".mha", ".mhd")
LABEL_MARKERS = ("_gt", "_seg", "_label", "_labels", "_mask")
# A frame, phase or channel of one patient, stripped to find the patient: patient001_ED, heart_000ED,
# patient001_frame01, case_0000, sub-01_T1w ... (a bare ED/ES needs a digit before it: not "SPEED").
PATIENT_SUFFIX = re.compile(r"(?:[_-](?:ed|es|frame\d+|fr\d+|t\d+|\d{4}|img|image)|(?<=\d)(?:ED|ES))+$", re.IGNORECASE)
PHASE = re.compile(r"(?:[_-]|(?<=\d))(ED|ES)(?:[_-]|$)", re.IGNORECASE)
CHANNEL_SUFFIX = re.compile(r"_(\d{4})$")
CINE_MIN_FRAMES = 5  # a 4th dimension this long is time (a cine); shorter ones are channels (BraTS: 4)


@dataclass
class Source:
    """Where one volume lives: a file, one frame of a 4D file, or the files of one DICOM series."""

    path: str
    frame: int | None = None
    files: list[str] | None = None
    kind: str = "image"  # "image", or for labels "dicom-seg"


@dataclass
class Entry:
    """One case: an image, its label map if there is one, and where it belongs."""

    case_id: str
    patient_id: str
    image: Source
    label: Source | None = None
    phase: str | None = None  # "ED" or "ES" when the layout says so
    group: str | None = None  # a class sub-folder
    split: str | None = None  # "training" or "testing", as the layout names it
    channels: int = 1
    labels: list[str] | None = None  # multi-label findings, from a label table


@dataclass
class Cine:
    """A patient's whole cine (4D: x, y, slice, time), attached to the patient, not a case of its own."""

    patient_id: str
    source: Source
    ed: int | None = None  # 0-based frame indices, when the layout's metadata names them
    es: int | None = None


@dataclass
class Discovery:
    layout: str  # the layout's name, shown in the card
    entries: list[Entry] = field(default_factory=list)
    cines: list[Cine] = field(default_factory=list)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)  # non-identifying metadata per patient
    findings: list[Any] = field(default_factory=list)  # contracts.findings.Finding, about the layout itself
    label_names: dict[int, str] = field(default_factory=dict)  # as the data set names its label values
    convention: str | None = None  # a label convention the layout defines (M&Ms: "mnms")
    modality: str | None = None  # as the data set states it (dataset.json, BIDS sidecars, DICOM)
    channel_names: list[str] = field(default_factory=list)
    unpaired_labels: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # objects listed and not used, with why
    series: list[dict[str, Any]] = field(default_factory=list)  # DICOM: patient / study / series
    identifiers: set[str] = field(default_factory=set)  # identifying values seen (for redaction only)


def finding(case: str, message: str, path: Path | str, severity: str = "error"):
    from jupyter_medagent.contracts.findings import Finding

    return Finding(case, "damaged_layout", severity, message, {"path": str(path)})


def strip_suffix(name: str) -> str:
    for suffix in IMAGE_SUFFIXES + (".dcm",):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_image_file(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and name.endswith(IMAGE_SUFFIXES)


def label_marker(stem: str) -> str | None:
    return next((m for m in LABEL_MARKERS if stem.lower().endswith(m)), None)


def patient_of(case_id: str) -> str:
    """``patient001_ED``, ``heart_000ED``, ``patient001_frame01`` -> the patient; frames and channels share it.

    Args:
        case_id: a case name from the data card.

    Returns:
        the patient id (the case id itself when it carries no frame or channel suffix).
    """
    stripped = PATIENT_SUFFIX.sub("", case_id)
    return stripped or case_id


def phase_of(name: str) -> str | None:
    match = PHASE.search(name)
    return match.group(1).upper() if match else None


def frames_of(path: Path) -> int:
    """Frames in the 4th dimension of an image file (1 for a 3D file), from its header alone."""
    from jupyter_medagent.imaging.io import read_header

    shape = read_header(path)[0]
    return shape[3] if len(shape) >= 4 else 1
