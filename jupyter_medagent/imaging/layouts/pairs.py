"""Plain folders: label maps beside their images with a common suffix (``_gt``, ``_seg``, ``_mask``,
``_label(s)``), flat or one folder per patient or per class; DICOM series anywhere in the tree beside them.

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
from jupyter_medagent.errors import DataError

NAME = "folder of images and label maps"


def detect(root: Path) -> bool:
    return True


def discover(root: Path) -> Discovery:
    found = Discovery(NAME)
    files = sorted(p for p in root.rglob("*") if is_image_file(p))
    label_files = {}
    for path in files:
        stem = strip_suffix(path.name)
        marker = label_marker(stem)
        if marker:
            label_files[(path.parent, stem[: -len(marker)])] = path
    used = set()
    for path in files:
        stem = strip_suffix(path.name)
        if label_marker(stem):
            continue
        key = (path.parent, stem)
        label = label_files.get(key)
        if label is not None:
            used.add(key)
        group = path.parent.name if path.parent != root and path.parent.parent == root else None
        _add(found, stem, path, label, group, root)
    found.unpaired_labels = [str(p.relative_to(root)) for key, p in sorted(label_files.items()) if key not in used]
    if any(dicom.is_dicom(p) for p in root.rglob("*") if p.is_file()):
        dicom_tree.discover(root, found)
        found.layout = f"{NAME}, with DICOM series" if files else dicom_tree.NAME
    return found


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
