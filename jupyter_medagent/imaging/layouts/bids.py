"""BIDS: ``sub-01/[ses-01/]anat/sub-01[_ses-01]_T1w.nii.gz`` with a JSON sidecar; label maps and masks from
``derivatives/<pipeline>/sub-01/[ses-01/]anat/..._dseg.nii.gz`` or ``..._mask.nii.gz``. Subject = patient."""

from __future__ import annotations

import json
import re
from pathlib import Path

from jupyter_medagent.imaging.layouts.common import Discovery, Entry, Source, is_image_file, strip_suffix

NAME = "BIDS"
ENTITY = re.compile(r"(sub|ses|acq|run)-([A-Za-z0-9]+)")
LABEL_SUFFIXES = ("_dseg", "_mask", "_label")


def detect(root: Path) -> bool:
    return (root / "dataset_description.json").exists() or any(True for _ in root.glob("sub-*/*anat"))


def _entities(name: str) -> dict[str, str]:
    return dict(ENTITY.findall(name))


def discover(root: Path) -> Discovery:
    found = Discovery(NAME)
    labels = [p for p in sorted((root / "derivatives").rglob("*")) if is_image_file(p)
              and any(s in strip_suffix(p.name) for s in LABEL_SUFFIXES)] if (root / "derivatives").is_dir() else []
    used = set()
    modalities = set()
    for image in sorted(root.glob("sub-*/**/anat/*")):
        if not is_image_file(image) or "derivatives" in image.parts:
            continue
        stem = strip_suffix(image.name)
        entities = _entities(stem)
        kind = stem.rsplit("_", 1)[-1]  # T1w, T2w, FLAIR, ...
        candidates = [p for p in labels if all(_entities(p.name).get(k) == v for k, v in entities.items())]
        # Prefer a label made from this image's contrast (…_T1w_dseg, …_desc-brain_mask beside a T1w).
        candidates.sort(key=lambda p: (kind not in p.name, p.name))
        label = candidates[0] if candidates else None
        if label is not None:
            used.add(label)
        sidecar = image.with_name(stem + ".json")
        if sidecar.exists():
            try:
                modalities.add(str(json.loads(sidecar.read_text()).get("Modality", "MR")))
            except (OSError, ValueError):
                pass
        else:
            modalities.add("MR")  # anat/ holds MRI by the BIDS specification
        found.entries.append(Entry(stem, f"sub-{entities.get('sub', stem)}", Source(str(image)),
                                   Source(str(label)) if label else None))
    found.modality = modalities.pop() if len(modalities) == 1 else None
    found.unpaired_labels = [str(p.relative_to(root)) for p in labels if p not in used]
    return found
