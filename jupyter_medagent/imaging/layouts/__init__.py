"""Where the cases are: the folder layouts people download, each recognised by name.

A layout module has ``NAME``, ``detect(root) -> bool`` and ``discover(root) -> Discovery``; they are
tried in the order of ``LAYOUTS`` (the most specific first). What a layout finds broken (a frame named
in Info.cfg that is missing, a CSV without a row for a case, a SEG whose series is absent) becomes a
finding that names the file, never an exception.
"""

from __future__ import annotations

from pathlib import Path

from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.imaging.layouts.common import Cine, Discovery, Entry, Source, patient_of, phase_of

__all__ = ["Cine", "Discovery", "Entry", "Source", "discover", "patient_of", "phase_of"]


def discover(root) -> Discovery:
    from jupyter_medagent.imaging.layouts import acdc, bids, decathlon, dicom_tree, medmnist, mnms, pairs, pictures

    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a folder")
    for layout in (decathlon, acdc, mnms, bids, medmnist, dicom_tree, pictures, pairs):
        if layout.detect(root):
            return layout.discover(root)
    return pairs.discover(root)
