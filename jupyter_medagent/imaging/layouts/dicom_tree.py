"""A tree of DICOM files as it comes off a scanner or a PACS export: files of any name, found by content,
grouped by SeriesInstanceUID wherever they sit; several patients, studies and modalities in one tree.

Each image series becomes a case (a series whose slices have several orientations, like a tri-plane
localizer, becomes one case per orientation, named ``..._planeN``; a series with a gap in its slice positions keeps its longest
regular run and reports the rest). DICOM SEG objects become the label maps of the series they reference;
RTSTRUCT contour sets are listed, not yet rasterised.
DICOMDIR indexes, structured reports, presentation states and other objects without pixels are listed and
skipped. Patients, studies and series are numbered, never named: identifying values stay out of the card.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.imaging import dicom
from jupyter_medagent.imaging.layouts.common import Discovery, Entry, Source, finding

NAME = "DICOM"
GAP_FACTOR = 1.5  # a step this much larger than the typical one means slices are missing


def detect(root: Path) -> bool:
    return any(dicom.is_dicom(p) for p in _files(root)) and not any(p.name.lower().endswith((".nii", ".nii.gz"))
                                                                    for p in _files(root))


def _files(root: Path):
    return (p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("."))


def discover(root: Path, found: Discovery | None = None) -> Discovery:
    """The DICOM objects under ``root``; ``found`` is extended when DICOM sits beside other files."""
    found = found or Discovery(NAME)
    series: dict[str, list[tuple[Path, object]]] = defaultdict(list)
    segs: list[tuple[Path, object]] = []
    patients: dict[str, str] = {}  # PatientID -> pseudonym
    studies: dict[str, str] = {}
    for path in _files(root):
        if not dicom.is_dicom(path):
            continue
        try:
            ds = dicom.read_header(path)
        except DataError as exc:
            found.findings.append(finding(path.name, exc.problem, path))
            continue
        found.identifiers |= dicom.identifying_values(ds)
        sop = str(ds.get("SOPClassUID") or getattr(ds, "file_meta", {}).get("MediaStorageSOPClassUID", ""))
        modality = str(ds.get("Modality", "")) or "OT"
        if sop == dicom.DICOMDIR_SOP_CLASS or path.name.upper() == "DICOMDIR":
            found.skipped.append(f"{path.relative_to(root)}: a DICOMDIR index (the files it lists are read directly)")
        elif sop == dicom.SEG_SOP_CLASS:
            segs.append((path, ds))
        elif sop == dicom.RTSTRUCT_SOP_CLASS:
            found.skipped.append(f"{path.relative_to(root)}: an RTSTRUCT (its contours are not read as label maps; "
                                 "export the structures as DICOM SEG to use them)")
        elif "PixelData" not in ds and not ds.get("Rows"):
            found.skipped.append(f"{path.relative_to(root)}: a {modality} object without pixel data (report, "
                                 "presentation state or the like)")
        else:
            series[str(ds.get("SeriesInstanceUID", path.parent))].append((path, ds))
    by_uid: dict[str, list[Entry]] = {}
    for uid, members in sorted(series.items(), key=lambda kv: _series_order(kv[1])):
        first = members[0][1]
        patient = patients.setdefault(str(first.get("PatientID", "")), f"patient{len(patients) + 1:02d}")
        study = studies.setdefault(str(first.get("StudyInstanceUID", "")), f"study{len(studies) + 1}")
        number = first.get("SeriesNumber")
        name = f"{patient}_{study}_series{number if number not in (None, '') else len(by_uid) + 1}"
        modality = str(first.get("Modality", "")) or "OT"
        entries = _cases(name, patient, modality, members, root, found)
        by_uid[uid] = entries
        found.series.append({"patient": patient, "study": study, "series": name.rsplit("_", 1)[1], "modality": modality,
                             "slices": len(members), "cases": [e.case_id for e in entries]})
    for path, ds in segs:
        _attach_seg(path, ds, by_uid, root, found)
    found.entries += [e for entries in by_uid.values() for e in entries]
    modalities = {s["modality"] for s in found.series}
    found.modality = modalities.pop() if len(modalities) == 1 else found.modality
    return found


def _series_order(members) -> tuple:
    ds = members[0][1]
    return (str(ds.get("PatientID", "")), str(ds.get("StudyInstanceUID", "")), int(ds.get("SeriesNumber") or 0))


def _cases(name: str, patient: str, modality: str, members, root: Path, found: Discovery) -> list[Entry]:
    """One case per orientation in the series, each the longest regularly spaced run of its slices."""
    groups: dict[tuple, list[tuple[Path, object]]] = defaultdict(list)
    for path, ds in members:
        orientation = tuple(np.round(np.array(ds.get("ImageOrientationPatient") or [1, 0, 0, 0, 1, 0], dtype=float), 3))
        groups[orientation].append((path, ds))
    entries = []
    for index, (orientation, slices) in enumerate(groups.items(), 1):
        case_id = f"{name}_{modality}" + (f"_plane{index}" if len(groups) > 1 else "")
        run, dropped = _regular_run(slices, orientation)
        if dropped:
            found.findings.append(finding(case_id, f"slice positions of {name} ({modality}) have a gap: {len(dropped)} of "
                                          f"{len(slices)} slices lie apart from the rest (a truncated or incomplete "
                                          f"series); the {len(run)} regularly spaced slices are used",
                                          dropped[0].relative_to(root), "warning"))
        entries.append(Entry(case_id, patient, Source(str(run[0].parent), files=[str(p) for p in run])))
    return entries


def _regular_run(slices, orientation) -> tuple[list[Path], list[Path]]:
    normal = np.cross(orientation[:3], orientation[3:])
    positions = [(float(np.dot(normal, np.array(ds.get("ImagePositionPatient") or [0, 0, i], dtype=float))), path)
                 for i, (path, ds) in enumerate(slices)]
    positions.sort(key=lambda t: t[0])
    if len(positions) < 3:
        return [p for _, p in positions], []
    steps = np.diff([z for z, _ in positions])
    typical = float(np.median(steps))
    runs, current = [], [positions[0]]
    for step, item in zip(steps, positions[1:]):
        if typical > 0 and step > GAP_FACTOR * typical:
            runs.append(current)
            current = []
        current.append(item)
    runs.append(current)
    best = max(runs, key=len)
    kept = [p for _, p in best]
    return kept, [p for _, p in positions if p not in kept]


def _attach_seg(path: Path, ds, by_uid: dict[str, list[Entry]], root: Path, found: Discovery) -> None:
    referenced = [str(item.get("SeriesInstanceUID")) for item in ds.get("ReferencedSeriesSequence", [])]
    target = next((uid for uid in referenced if uid in by_uid), None)
    if target is None:
        found.findings.append(finding(path.name, f"{path.relative_to(root)} is a DICOM SEG for a series that is not in "
                                      "the folder; it is not used", path))
        return
    entries = by_uid[target]
    if len(entries) != 1:
        found.findings.append(finding(path.name, f"{path.relative_to(root)} labels a series split into {len(entries)} "
                                      "cases; it is not used", path))
        return
    entries[0].label = Source(str(path), kind="dicom-seg")
    for item in ds.get("SegmentSequence", []):
        found.label_names[int(item.SegmentNumber)] = str(item.get("SegmentLabel", f"segment {item.SegmentNumber}"))
