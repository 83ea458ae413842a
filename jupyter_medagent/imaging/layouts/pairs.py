"""Plain folders: label maps beside their images with a common suffix (``_gt``, ``_seg``, ``_mask``,
``_label(s)``), or in ``labels/`` beside ``images/`` with the same name (grand-challenge .mha, LUNA-style
.mhd + .raw), flat or one folder per patient or per class; 3D Slicer exports (a patient folder holding a
scan and its ``Segmentation.seg.nrrd``); DICOM series anywhere in the tree beside them.

A 4D image is a cine when its 4th dimension is long (time), channels when short. A cine with a 4D label
map gives one case per labelled frame; a cine without one is attached to its patient.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jupyter_medagent.imaging import dicom
from jupyter_medagent.imaging.io import read_header
from jupyter_medagent.imaging.layouts import dicom_tree
from jupyter_medagent.imaging.layouts.common import (
    CINE_MIN_FRAMES, Cine, Discovery, Entry, Source, finding, is_image_file, label_marker, patient_of, phase_of,
    strip_suffix,
)
from jupyter_medagent.contracts.errors import DataError

NAME = "folder of images and label maps"
LABEL_FOLDERS = ("labels", "masks", "segmentations")  # beside images/: labels matched to images by stem


def detect(root: Path) -> bool:
    return True


def discover(root: Path) -> Discovery:
    found = Discovery(NAME)
    files = sorted(p for p in root.rglob("*") if is_image_file(p))
    label_files, slicer = {}, {}
    for path in files:
        stem = strip_suffix(path.name)
        marker = label_marker(stem)
        if path.name.lower().endswith(".seg.nrrd"):
            slicer.setdefault(path.parent, []).append(path)
        elif marker:
            label_files[(path.parent, stem[: -len(marker)])] = path
        elif path.parent.name.lower() in LABEL_FOLDERS:
            label_files[(path.parent.parent / "images", stem)] = path
    used, slicer_images = set(), _slicer_cases(slicer, files, found, root)
    for path in files:
        stem = strip_suffix(path.name)
        if path in slicer_images or path.name.lower().endswith(".seg.nrrd") or label_marker(stem) \
                or path.parent.name.lower() in LABEL_FOLDERS:
            continue
        key = (path.parent, stem)
        label = label_files.get(key)
        if label is not None:
            used.add(key)
        group = path.parent.name if path.parent != root and path.parent.parent == root and \
            path.parent.name.lower() != "images" else None
        _add(found, stem, path, label, group, root)
    found.unpaired_labels += [str(p.relative_to(root)) for folder, segs in sorted(slicer.items())
                              for p in segs if p.parent not in {i.parent for i in slicer_images}]
    found.unpaired_labels += [str(p.relative_to(root)) for key, p in sorted(label_files.items()) if key not in used]
    if any(dicom.is_dicom(p) for p in root.rglob("*") if p.is_file()):
        dicom_tree.discover(root, found)
        found.layout = f"{found.layout}, with DICOM series" if files else dicom_tree.NAME
    return found


def _slicer_cases(slicer: dict[Path, list[Path]], files: list[Path], found: Discovery, root: Path) -> set[Path]:
    """A 3D Slicer export: a folder holding one scan and its .seg.nrrd is ONE case (named after the folder),
    with the segment names and values from the .seg.nrrd header. Returns the scans used."""
    from jupyter_medagent.imaging.formats import seg_nrrd_segments

    used = set()
    for folder, segs in sorted(slicer.items()):
        scans = [p for p in files if p.parent == folder and not p.name.lower().endswith(".seg.nrrd")]
        if len(scans) != 1 or len(segs) != 1:
            found.findings.append(finding(folder.name, f"{folder.relative_to(root) if folder != root else '.'} holds "
                                          f"{len(scans)} scan(s) and {len(segs)} .seg.nrrd file(s): which segmentation "
                                          "belongs to which scan cannot be told, so they are not paired", segs[0]))
            continue
        case_id = folder.name if folder != root else strip_suffix(scans[0].name)
        try:
            found.label_names.update(seg_nrrd_segments(segs[0]))
        except DataError as exc:
            found.findings.append(finding(case_id, str(exc), segs[0]))
        found.entries.append(Entry(case_id, case_id, Source(str(scans[0])), Source(str(segs[0]))))
        used.add(scans[0])
    if used:
        found.layout = "3D Slicer export (one scan and its .seg.nrrd per patient folder)"
    return used


def _add(found: Discovery, stem: str, image: Path, label: Path | None, group: str | None, root: Path) -> None:
    patient = patient_of(stem)
    try:
        shape = read_header(image)[0]
    except DataError:
        shape = ()  # the card reports why it cannot be read
    if len(shape) < 4 or shape[3] < CINE_MIN_FRAMES:
        found.entries.append(Entry(stem, patient, Source(str(image)), Source(str(label)) if label else None,
                                   phase_of(stem), group, channels=shape[3] if len(shape) >= 4 else 1))
        return
    found.cines.append(Cine(patient, Source(str(image))))
    if label is None:
        return
    try:
        label_shape = read_header(label)[0]
    except DataError:
        label_shape = ()
    if len(label_shape) < 4 or label_shape[3] != shape[3]:
        found.findings.append(finding(stem, f"{image.relative_to(root)} is a cine of {shape[3]} frames but its label "
                                      f"map {label.relative_to(root)} has shape {label_shape}: which frame it labels "
                                      "cannot be told, so it is not used", label))
        return
    import nibabel as nib

    proxy = nib.load(str(label)).dataobj
    for frame in range(shape[3]):  # one case per labelled frame
        if np.asanyarray(proxy[..., frame]).any():
            found.entries.append(Entry(f"{stem}_frame{frame:02d}", patient, Source(str(image), frame=frame),
                                       Source(str(label), frame=frame), group=group))
