"""ACDC (Automated Cardiac Diagnosis Challenge): one folder per patient with Info.cfg (ED, ES, Group,
Height, Weight, NbFrame), the whole cine ``patientNNN_4d.nii.gz``, the ED and ES frames
``patientNNN_frameNN.nii.gz`` (numbered from 1) and their ``_gt`` label maps (absent for test patients).

The cine is attached to its patient, never counted as a case. A frame named in Info.cfg whose file is
missing is taken from the cine when there is one, and reported either way.
"""

from __future__ import annotations

import re
from pathlib import Path

from jupyter_medagent.imaging.layouts.common import Cine, Discovery, Entry, Source, finding, frames_of

NAME = "ACDC"
INFO = "Info.cfg"
FRAME_FILE = re.compile(r"^(?P<patient>.+)_frame(?P<frame>\d+)\.nii(\.gz)?$")
NUMERIC = ("ED", "ES", "Height", "Weight", "NbFrame")


def detect(root: Path) -> bool:
    return any(True for _ in _info_files(root))


def _info_files(root: Path):
    for depth in ("*/", "*/*/", "*/*/*/", ""):
        yield from root.glob(f"{depth}{INFO}")


def discover(root: Path) -> Discovery:
    found = Discovery(NAME, convention="acdc")
    for info in sorted(_info_files(root)):
        folder = info.parent
        patient = folder.name
        meta = _read_info(info, found)
        split = _split_of(folder, root)
        found.patients[patient] = {k: meta[k] for k in ("Group", "Height", "Weight", "NbFrame", "ED", "ES") if k in meta}
        cine_path = next(iter(sorted(folder.glob(f"{patient}_4d.nii*"))), None)
        frames = {}
        for path in sorted(folder.glob(f"{patient}_frame*.nii*")):
            match = FRAME_FILE.match(path.name)
            if match and not path.name.split(".")[0].endswith("_gt"):
                frames[int(match["frame"])] = path
        n_frames = None
        if cine_path is not None:
            n_frames = frames_of(cine_path)
            if "NbFrame" in meta and int(meta["NbFrame"]) != n_frames:
                found.findings.append(finding(patient, f"{info.relative_to(root)} says NbFrame {int(meta['NbFrame'])} but "
                                              f"{cine_path.name} has {n_frames} frames", info, "warning"))
            found.cines.append(Cine(patient, Source(str(cine_path)), _index(meta.get("ED"), n_frames),
                                    _index(meta.get("ES"), n_frames)))
        for phase in ("ED", "ES"):
            if phase not in meta:
                continue
            number = int(meta[phase])
            image = frames.pop(number, None)
            label = image.with_name(image.name.replace(f"_frame{number:02d}", f"_frame{number:02d}_gt")) if image else None
            source = Source(str(image)) if image else None
            if image is None:
                where = f"{patient}_frame{number:02d}.nii.gz"
                if cine_path is not None and n_frames and 1 <= number <= n_frames:
                    source = Source(str(cine_path), frame=number - 1)
                    found.findings.append(finding(patient, f"{info.relative_to(root)} names {phase} frame {number} but "
                                                  f"{where} is missing; the frame is taken from {cine_path.name}", info,
                                                  "warning"))
                else:
                    found.findings.append(finding(patient, f"{info.relative_to(root)} names {phase} frame {number} but "
                                                  f"{where} is missing", info))
                    continue
            has_label = label is not None and label.exists()
            found.entries.append(Entry(f"{patient}_{phase}", patient, source, Source(str(label)) if has_label else None,
                                       phase, split=split or ("training" if has_label else "testing")))
        for _, path in sorted(frames.items()):  # frame files Info.cfg does not name
            found.findings.append(finding(patient, f"{path.relative_to(root)} is not the ED or ES frame named in "
                                          f"{INFO}; it is not used", path, "info"))
    return found


def _read_info(path: Path, found: Discovery) -> dict:
    meta = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            found.findings.append(finding(path.parent.name, f"{path.name} line {number} is not 'key: value': {line[:60]!r}",
                                          path, "warning"))
            continue
        key, value = key.strip(), value.strip()
        if key in NUMERIC:
            try:
                meta[key] = float(value)
            except ValueError:
                found.findings.append(finding(path.parent.name, f"{path.name}: {key} is not a number ({value!r})", path))
                continue
        else:
            meta[key] = value
    for key in ("ED", "ES"):
        if key not in meta:
            found.findings.append(finding(path.parent.name, f"{path.name} does not say which frame is {key}", path))
    return meta


def _index(number, n_frames: int | None) -> int | None:
    if number is None or n_frames is None or not 1 <= int(number) <= n_frames:
        return None
    return int(number) - 1


def _split_of(folder: Path, root: Path) -> str | None:
    for part in folder.relative_to(root).parts[:-1] if folder != root else ():
        if part.lower() in ("training", "train"):
            return "training"
        if part.lower() in ("testing", "test"):
            return "testing"
    return None
