"""2D pictures (PNG, JPEG, TIFF, BMP, GIF) as the public 2D data sets ship them:

- class folders, with the data set's own ``train/ val/ test/`` splits kept as given
  (Kaggle chest X-ray: ``chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg``);
- images and masks matched by stem, beside each other or in their own folders, with the usual mask
  suffixes (Kvasir-SEG ``images/`` + ``masks/``; ISIC ``ISIC_0000000.jpg`` + ``ISIC_0000000_segmentation.png``;
  BUSI ``benign (1).png`` + ``benign (1)_mask.png``, whose extra ``_mask_1`` masks are merged into one);
- a CSV label table naming each image: one-hot class columns (ISIC), ``Finding Labels`` with
  ``|``-separated labels and a ``Patient ID`` (NIH ChestX-ray14), a ``split`` column.

Patients come from the table, else from the file name (NIH ``00000001_000.png`` is patient ``00000001``,
the chest X-ray set's ``person12_bacteria_48.jpeg`` patient ``person12``), so splits stay patient-level.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from jupyter_medagent.imaging.formats import PICTURE_SUFFIXES, is_picture
from jupyter_medagent.imaging.layouts.common import Discovery, Entry, Source, finding

NAME = "2D pictures"
MASK_SUFFIXES = ("_segmentation", "_manual1", "_mask", "_gt", "_label")  # compared case-insensitively
EXTRA_MASK = re.compile(r"_mask_\d+$", re.IGNORECASE)  # BUSI: a second lesion's mask of the same image
MASK_FOLDER_WORDS = ("mask", "groundtruth", "ground_truth", "label", "annotation", "manual", "segmentation")
SPLITS = {"train": "training", "training": "training", "val": "validation", "valid": "validation",
          "validation": "validation", "test": "testing", "testing": "testing"}
IMAGE_FOLDERS = {"images", "image", "imgs", "img", "input", "inputs", "originals"}
PATIENT_PATTERNS = (re.compile(r"^(\d{4,})_\d+$"), re.compile(r"^(person\d+)_", re.IGNORECASE))
ID_COLUMNS = ("image index", "image", "image_id", "imageid", "image_name", "filename", "file", "path", "id", "isic_id")
PATIENT_COLUMNS = ("patient id", "patient_id", "patientid", "patient")
CLASS_COLUMNS = ("label", "class", "diagnosis", "target", "dx")


def detect(root: Path) -> bool:
    """Pictures and nothing a volume layout reads (NIfTI, ITK, DICOM go to the other layouts)."""
    from jupyter_medagent.imaging.layouts.common import is_image_file

    pictures = False
    for path in root.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if is_image_file(path):
            return False
        pictures = pictures or is_picture(path)
    return pictures


def patient_of_picture(stem: str) -> str:
    for pattern in PATIENT_PATTERNS:
        match = pattern.match(stem)
        if match:
            return match.group(1)
    return stem


def discover(root: Path) -> Discovery:
    found = Discovery(NAME)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".") and is_picture(p))
    images, masks = [], {}
    for path in files:
        relative = path.relative_to(root)
        stem = path.name[: -len(_suffix(path.name))]
        split = _split_of(relative)
        base = _mask_base(stem)
        in_mask_folder = any(word in part.lower() for part in relative.parts[:-1] for word in MASK_FOLDER_WORDS)
        if base is not None or in_mask_folder:
            masks.setdefault((split, base or stem), []).append(path)
        else:
            images.append((path, stem, split))
    table = _label_table(root, found)
    used = set()
    for path, stem, split in images:
        key = (split, stem)
        mask_files = sorted(masks.get(key, []), key=lambda p: (bool(EXTRA_MASK.search(p.stem)), p.name))
        if mask_files:
            used.add(key)
        row = table.get(stem.lower(), {}) if table is not None else {}
        if table is not None and not row:
            found.findings.append(finding(stem, f"{path.relative_to(root)} has no row in the label table", path, "warning"))
        label = Source(str(mask_files[0]), files=[str(m) for m in mask_files], kind="mask") if mask_files else None
        found.entries.append(Entry(stem, row.get("patient") or patient_of_picture(stem), Source(str(path)), label,
                                   group=row.get("class") or _class_folder(path, root), split=row.get("split") or split,
                                   labels=row.get("labels")))
    groups = {e.group for e in found.entries}
    if len(groups) < 2 or None in groups:
        for entry in found.entries:
            entry.group = None  # one folder for all is no class
    if any(e.labels is not None for e in found.entries):
        found.layout = f"{NAME} with a multi-label table"
    elif any(e.label for e in found.entries):
        found.layout = f"{NAME}: images and masks matched by name"
    elif any(e.group for e in found.entries):
        found.layout = f"{NAME} in class folders" + (" with train/val/test splits" if any(e.split for e in found.entries) else "")
    found.unpaired_labels = [str(p.relative_to(root)) for key, paths in sorted(masks.items()) if key not in used
                             for p in paths]
    return found


def _suffix(name: str) -> str:
    return next(s for s in PICTURE_SUFFIXES if name.lower().endswith(s))


def _mask_base(stem: str) -> str | None:
    """The image's stem when ``stem`` names a mask (``benign (1)_mask_1`` -> ``benign (1)``), else None."""
    extra = EXTRA_MASK.search(stem)
    if extra:
        return stem[: extra.start()]
    lower = stem.lower()
    return next((stem[: -len(s)] for s in MASK_SUFFIXES if lower.endswith(s)), None)


def _split_of(relative: Path) -> str | None:
    for part in relative.parts[:-1]:
        lower = part.lower()
        if lower in SPLITS:
            return SPLITS[lower]
    return None


def _class_folder(path: Path, root: Path) -> str | None:
    """The folder holding the picture, unless it is the root, a split or a folder of images."""
    folder = path.parent
    if folder == root or folder.name.lower() in SPLITS or folder.name.lower() in IMAGE_FOLDERS:
        return None
    return folder.name


# --------------------------------------------------------------------------- label tables
def _label_table(root: Path, found: Discovery) -> dict[str, dict] | None:
    """{image stem (lower case): {"class" | "labels", "patient", "split"}} from the first CSV that names the
    images, or None when there is no such table."""
    for path in sorted(root.glob("*.csv")) + sorted(root.glob("*/*.csv")):
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            found.findings.append(finding(path.name, f"{path.relative_to(root)} cannot be read as CSV ({exc})", path))
            continue
        if not rows or not rows[0]:
            continue
        columns = {c.strip().lower(): c for c in rows[0] if c}
        id_column = next((columns[c] for c in ID_COLUMNS if c in columns), None)
        if id_column is None:
            continue
        table = {}
        one_hot = _one_hot_columns(rows, columns, id_column)
        for row in rows:
            stem = Path(str(row[id_column]).strip()).name
            stem = stem[: -len(_suffix(stem))] if is_picture(stem) else stem
            entry = {}
            if "finding labels" in columns:
                text = str(row[columns["finding labels"]]).strip()
                entry["labels"] = sorted({t.strip() for t in text.split("|") if t.strip() and t.strip() != "No Finding"})
            elif one_hot:
                entry["class"] = next((c for c in one_hot if float(row[c] or 0) >= 0.5), None)
            else:
                entry["class"] = next((str(row[columns[c]]).strip() for c in CLASS_COLUMNS if c in columns), None)
            patient = next((str(row[columns[c]]).strip() for c in PATIENT_COLUMNS if c in columns), "")
            if patient:
                entry["patient"] = patient
            if "split" in columns:
                entry["split"] = SPLITS.get(str(row[columns["split"]]).strip().lower())
            table[stem.lower()] = entry
        return table
    return None


def _one_hot_columns(rows: list[dict], columns: dict[str, str], id_column: str) -> list[str]:
    """Columns holding 0/1 with exactly one 1 per row (ISIC's MEL, NV, BCC, ...), else []."""
    candidates = []
    for column in columns.values():
        if column == id_column or column.strip().lower() in ("split",) + PATIENT_COLUMNS:
            continue
        try:
            values = {float(row[column] or 0) for row in rows}
        except (TypeError, ValueError):
            continue
        if values <= {0.0, 1.0}:
            candidates.append(column)
    if len(candidates) < 2:
        return []
    if all(sum(float(row[c] or 0) for c in candidates) == 1 for row in rows):
        return candidates
    return []
