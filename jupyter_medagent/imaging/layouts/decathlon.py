"""imagesTr/ + labelsTr/ (+ imagesTs/): the Medical Segmentation Decathlon, nnU-Net v2 raw data sets, and
folders laid out the same way without a dataset.json.

MSD's dataset.json maps label values to names ("labels": {"1": "left ventricle"}) and names the modality
per channel; multi-channel images (BraTS) keep their channels in the 4th dimension. nnU-Net v2 maps names
to values ("labels": {"LV": 1}), names channels in "channel_names" and stores them as separate files
(case_0000, case_0001, ...). imagesTs/ holds cases without labels.
"""

from __future__ import annotations

import json
from pathlib import Path

from jupyter_medagent.imaging.layouts.common import (
    CHANNEL_SUFFIX, Discovery, Entry, Source, finding, is_image_file, patient_of, phase_of, strip_suffix,
)

NAME = "imagesTr/labelsTr"


def detect(root: Path) -> bool:
    return (root / "imagesTr").is_dir() or (root / "imagesTs").is_dir()


def discover(root: Path) -> Discovery:
    found = Discovery(NAME)
    description = _read_dataset_json(root, found)
    file_ending = description.get("file_ending")
    if "channel_names" in description:
        found.layout = "nnU-Net v2 raw data set"
        channels = description["channel_names"]
        found.label_names = {int(v): str(k) for k, v in description.get("labels", {}).items() if _is_int(v)}
    elif "modality" in description:
        found.layout = "Medical Segmentation Decathlon"
        channels = description["modality"]
        found.label_names = {int(k): str(v) for k, v in description.get("labels", {}).items() if _is_int(k)}
    else:
        channels = {}
        found.layout = "imagesTr/labelsTr (nnU-Net style, no dataset.json)"
    found.channel_names = [str(channels[k]) for k in sorted(channels, key=lambda k: int(k) if _is_int(k) else 0)]
    found.modality = _modality(found.channel_names)
    labels_dir = root / "labelsTr"
    labels = {strip_suffix(p.name): p for p in sorted(labels_dir.iterdir()) if is_image_file(p)} if labels_dir.is_dir() else {}
    used = set()
    for folder, split in ((root / "imagesTr", "training"), (root / "imagesTs", "testing")):
        if not folder.is_dir():
            continue
        by_case: dict[str, list[Path]] = {}
        for image in sorted(p for p in folder.iterdir() if is_image_file(p)):
            if file_ending and not image.name.endswith(file_ending):
                continue
            stem = strip_suffix(image.name)
            case_id = CHANNEL_SUFFIX.sub("", stem) if "channel_names" in description or CHANNEL_SUFFIX.search(stem) else stem
            by_case.setdefault(case_id, []).append(image)
        for case_id, files in by_case.items():
            label = labels.get(case_id) if split == "training" else None
            if label is not None:
                used.add(case_id)
            elif split == "training" and labels:
                found.findings.append(finding(case_id, f"{files[0].relative_to(root)} has no label map in labelsTr/",
                                              files[0], "warning"))
            channels_found = len(files) if len(files) > 1 else max(1, len(found.channel_names))
            if found.channel_names and len(files) > 1 and len(files) != len(found.channel_names):
                found.findings.append(finding(case_id, f"{len(files)} channel files but dataset.json names "
                                              f"{len(found.channel_names)} channels", files[0]))
            found.entries.append(Entry(case_id, patient_of(case_id), Source(str(files[0])),
                                       Source(str(label)) if label else None, phase_of(case_id), split=split,
                                       channels=channels_found))
    found.unpaired_labels = [str(p.relative_to(root)) for key, p in sorted(labels.items()) if key not in used]
    return found


def _read_dataset_json(root: Path, found: Discovery) -> dict:
    path = root / "dataset.json"
    if not path.exists():
        return {}
    try:
        description = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        found.findings.append(finding("dataset.json", f"dataset.json is not valid JSON ({exc})", path))
        return {}
    if not isinstance(description, dict):
        found.findings.append(finding("dataset.json", "dataset.json is not a JSON object", path))
        return {}
    return description


def _modality(channel_names: list[str]) -> str | None:
    """'CT' or 'MR' when every channel says so (MSD writes "CT", "MRI", "T2", "FLAIR", ...)."""
    kinds = {"CT" if name.upper() == "CT" else "MR" for name in channel_names}
    return kinds.pop() if len(kinds) == 1 else None


def _is_int(value) -> bool:
    try:
        int(value)
        return True
    except (TypeError, ValueError):
        return False
