"""MedMNIST as its ``.npz`` files ship (``pathmnist.npz``, ``organmnist3d_64.npz``, ...): arrays under the keys
``train_images``, ``train_labels``, ``val_*`` and ``test_*``, read by their keys (the ``medmnist`` package
would download them). Every image is a case, its split kept as given; a label of one column is the class
index, several columns are binary findings (ChestMNIST: multi-label). No patient ids are given, so each
image is its own patient."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.imaging.formats import MEDMNIST_SPLITS, npz_keys, npz_labels
from jupyter_medagent.imaging.layouts.common import Discovery, Entry, Source, finding

NAME = "MedMNIST .npz"


def detect(root: Path) -> bool:
    return any(_is_medmnist(p) for p in sorted(root.glob("*.npz")))


def _is_medmnist(path: Path) -> bool:
    try:
        return "train_images" in npz_keys(path) or "test_images" in npz_keys(path)
    except DataError:
        return False


def discover(root: Path) -> Discovery:
    found = Discovery(NAME)
    for path in sorted(root.glob("*.npz")):
        try:
            keys = npz_keys(path)
        except DataError as exc:
            found.findings.append(finding(path.name, str(exc), path))
            continue
        for key, split in MEDMNIST_SPLITS.items():
            if f"{key}_images" not in keys:
                continue
            n = keys[f"{key}_images"][0]
            labels = npz_labels(path, key) if f"{key}_labels" in keys else None
            if labels is not None and len(labels) != n:
                found.findings.append(finding(path.name, f"{path.name}: {key}_labels has {len(labels)} rows for {n} "
                                              f"images in {key}_images", path))
                labels = None
            for i in range(n):
                case = f"{path.stem}_{key}_{i:05d}"
                group, findings = None, None
                if labels is not None:
                    row = np.asarray(labels[i]).ravel()
                    if row.size == 1:
                        group = f"class {int(row[0])}"
                    else:
                        findings = [f"finding {k}" for k in np.flatnonzero(row)]
                found.entries.append(Entry(case, case, Source(str(path), frame=i), group=group, split=split,
                                           labels=findings))
    return found
