"""The data card: what is in a folder of scans, case by case, in derived numbers only.

Like nnU-Net's data fingerprint, it is what the pipeline's configuration is derived
from (spacing, anisotropy, modality, label set), and like a radiologist's first look
it lists what does not fit. It never holds voxels or identifying tags, so its text
form may be shown to a model.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from jupyter_medagent.errors import DataError
from jupyter_medagent.imaging.io import DICOM_SUFFIXES, NIFTI_SUFFIXES, load_volume
from jupyter_medagent.imaging.volume import Volume

IMAGE_SUFFIXES = NIFTI_SUFFIXES + (".mgz", ".mgh", ".img", ".nrrd")
LABEL_MARKERS = ("_gt", "_seg", "_label", "_labels", "_mask")
# Suffixes that name a frame, phase or channel of one patient, stripped to find the patient.
PATIENT_SUFFIX = re.compile(r"(_(ed|es|frame\d+|t\d+|\d{4}|img|image))+$", re.IGNORECASE)
CHANNEL_SUFFIX = re.compile(r"_\d{4}$")


@dataclass
class CaseCard:
    case_id: str
    patient_id: str
    image_path: str
    label_path: str | None
    shape: tuple[int, ...] = ()
    spacing: tuple[float, ...] = ()
    orientation: tuple[str, ...] = ()
    dtype: str = ""
    modality: str | None = None
    intensity: dict[str, float] = field(default_factory=dict)  # p0.5, p50, p99.5, mean, std
    label_values: list[float] = field(default_factory=list)
    label_integer: bool = True
    label_shape: tuple[int, ...] = ()
    label_spacing: tuple[float, ...] = ()
    group: str | None = None  # the sub-folder holding the image, e.g. a class name
    error: str | None = None  # why the case could not be read


@dataclass
class DataCard:
    folder: str
    cases: list[CaseCard]
    unpaired_labels: list[str] = field(default_factory=list)

    # ----------------------------------------------------------------- across cases
    @property
    def readable(self) -> list[CaseCard]:
        return [c for c in self.cases if c.error is None]

    @property
    def median_spacing(self) -> tuple[float, ...]:
        spacings = np.array([c.spacing[:3] for c in self.readable])
        return tuple(float(s) for s in np.median(spacings, axis=0)) if len(spacings) else ()

    @property
    def median_shape(self) -> tuple[int, ...]:
        """Median size of the cases along the R, A and S axes (the orientation every case is brought to)."""
        shapes = [ras_shape(c.shape, c.orientation) for c in self.readable if len(c.shape) >= 3]
        return tuple(int(s) for s in np.median(np.array(shapes), axis=0)) if shapes else ()

    @property
    def anisotropy(self) -> float:
        spacing = self.median_spacing
        return float(max(spacing) / min(spacing)) if spacing else 1.0

    @property
    def modality(self) -> str | None:
        modalities = {c.modality for c in self.readable if c.modality}
        return modalities.pop() if len(modalities) == 1 else (", ".join(sorted(modalities)) or None)

    @property
    def label_values(self) -> list[int]:
        values = {int(v) for c in self.readable if c.label_integer for v in c.label_values}
        return sorted(values)

    @property
    def classes(self) -> list[str]:
        """Class names when unlabelled images sit in two or more sub-folders (``DIR/<class>/scan.nii.gz``)."""
        if any(c.label_path for c in self.cases):
            return []
        groups = sorted({c.group for c in self.cases if c.group})
        return groups if len(groups) >= 2 and all(c.group for c in self.cases) else []

    @property
    def patients(self) -> list[str]:
        return sorted({c.patient_id for c in self.cases})

    def to_dict(self) -> dict:
        return {
            "folder": self.folder,
            "n_cases": len(self.cases),
            "n_labelled": sum(c.label_path is not None for c in self.cases),
            "n_patients": len(self.patients),
            "median_spacing": self.median_spacing,
            "median_shape": self.median_shape,
            "anisotropy": round(self.anisotropy, 2),
            "modality": self.modality,
            "label_values": self.label_values,
            "classes": self.classes,
            "unpaired_labels": self.unpaired_labels,
            "cases": [asdict(c) for c in self.cases],
        }

    def to_text(self) -> str:
        """A compact summary for a model: a header, then one line per case."""
        spacing = " x ".join(f"{s:.2f}" for s in self.median_spacing)
        lines = [
            f"Data folder: {Path(self.folder).name} — {len(self.cases)} cases from {len(self.patients)} patients, "
            f"{sum(c.label_path is not None for c in self.cases)} with label maps.",
            f"Median spacing {spacing} mm (anisotropy {self.anisotropy:.1f}); modality {self.modality or 'not stated'}; "
            f"label values {self.label_values}.",
        ]
        if self.classes:
            counts = {g: sum(c.group == g for c in self.cases) for g in self.classes}
            lines.append("Classes from sub-folders: " + ", ".join(f"{g} ({n})" for g, n in counts.items()))
        if self.unpaired_labels:
            lines.append(f"Label maps without an image: {', '.join(self.unpaired_labels)}")
        for c in self.cases:
            if c.error:
                lines.append(f"- {c.case_id}: UNREADABLE ({c.error})")
                continue
            i = c.intensity
            label = "no label" if c.label_path is None else f"labels {_fmt_values(c)}"
            lines.append(
                f"- {c.case_id}: {'x'.join(map(str, c.shape))} {c.dtype}, spacing {_fmt_spacing(c.spacing)}, "
                f"{''.join(c.orientation)}, intensity p0.5/p50/p99.5 {i['p0.5']:.4g}/{i['p50']:.4g}/{i['p99.5']:.4g}, {label}"
            )
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        header = "| case | patient | shape | spacing (mm) | orientation | intensity p0.5–p99.5 | labels |\n|---|---|---|---|---|---|---|"
        rows = []
        for c in self.cases:
            if c.error:
                rows.append(f"| {c.case_id} | {c.patient_id} | unreadable: {c.error} | | | | |")
                continue
            rows.append(
                f"| {c.case_id} | {c.patient_id} | {'×'.join(map(str, c.shape))} | {_fmt_spacing(c.spacing)} | "
                f"{''.join(c.orientation)} | {c.intensity['p0.5']:.4g}–{c.intensity['p99.5']:.4g} | "
                f"{'—' if c.label_path is None else _fmt_values(c)} |"
            )
        spacing = " × ".join(f"{s:.2f}" for s in self.median_spacing)
        summary = (
            f"**{len(self.cases)} cases, {len(self.patients)} patients** · median spacing {spacing} mm · "
            f"anisotropy {self.anisotropy:.1f} · label values {self.label_values}"
        )
        return summary + "\n\n" + header + "\n" + "\n".join(rows)


def ras_shape(shape: tuple[int, ...], orientation: tuple[str, ...]) -> tuple[int, int, int]:
    """The first three sizes of ``shape`` in R, A, S order (what reorienting to RAS makes of them)."""
    import nibabel as nib

    ornt = nib.orientations.axcodes2ornt(orientation)
    out = [0, 0, 0]
    for voxel_axis, (world_axis, _) in enumerate(ornt[:3]):
        out[int(world_axis)] = int(shape[voxel_axis])
    return tuple(out)


def _fmt_spacing(spacing) -> str:
    return "×".join(f"{s:.2f}" for s in spacing[:3])


def _fmt_values(card: CaseCard) -> str:
    if not card.label_integer:
        return f"NON-INTEGER ({len(card.label_values)} distinct values)"
    return str([int(v) for v in card.label_values])


# --------------------------------------------------------------------------- pairing
def _strip_suffix(name: str) -> str:
    for suffix in IMAGE_SUFFIXES + DICOM_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _is_image_file(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and name.endswith(IMAGE_SUFFIXES)


def _label_marker(stem: str) -> str | None:
    for marker in LABEL_MARKERS:
        if stem.lower().endswith(marker):
            return marker
    return None


def patient_of(case_id: str) -> str:
    """``patient001_ED`` -> ``patient001``; frames and channels of one patient share it."""
    stripped = PATIENT_SUFFIX.sub("", case_id)
    return stripped or case_id


def find_cases(folder) -> tuple[list[tuple[str, Path, Path | None]], list[str]]:
    """Pair images with label maps. Returns ([(case_id, image, label_or_None)], unpaired label files).

    Layouts: nnU-Net (imagesTr/ + labelsTr/, images named ``case_0000``), label files
    beside their image with a ``_gt``/``_seg``/``_label``/``_mask`` suffix (flat or one
    folder per patient), and DICOM series folders (one case per folder of .dcm files).
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(root, "not a folder")
    pairs: list[tuple[str, Path, Path | None]] = []
    unpaired: list[str] = []
    images_dirs = [d for d in (root / "imagesTr", root / "imagesTs") if d.is_dir()]
    if images_dirs:
        labels_dir = root / "labelsTr"
        labels = {_strip_suffix(p.name): p for p in labels_dir.iterdir() if _is_image_file(p)} if labels_dir.is_dir() else {}
        used = set()
        for images_dir in images_dirs:
            for image in sorted(p for p in images_dir.iterdir() if _is_image_file(p)):
                case_id = CHANNEL_SUFFIX.sub("", _strip_suffix(image.name))
                label = labels.get(case_id) if images_dir.name == "imagesTr" else None
                if label is not None:
                    used.add(case_id)
                pairs.append((case_id, image, label))
        unpaired = [str(p.relative_to(root)) for key, p in sorted(labels.items()) if key not in used]
    else:
        files = sorted(p for p in root.rglob("*") if _is_image_file(p))
        label_files = {}
        for path in files:
            stem = _strip_suffix(path.name)
            marker = _label_marker(stem)
            if marker:
                label_files[(path.parent, stem[: -len(marker)])] = path
        used = set()
        for path in files:
            stem = _strip_suffix(path.name)
            if _label_marker(stem):
                continue
            key = (path.parent, stem)
            label = label_files.get(key)
            if label is not None:
                used.add(key)
            pairs.append((stem, path, label))
        unpaired = [str(p.relative_to(root)) for key, p in sorted(label_files.items()) if key not in used]
        for series in sorted({p.parent for p in root.rglob("*") if p.is_file() and p.suffix.lower() in DICOM_SUFFIXES}):
            pairs.append((series.name if series != root else root.name, series, None))
    return pairs, unpaired


# --------------------------------------------------------------------------- the card
def describe_case(case_id: str, image_path: Path, label_path: Path | None, root: Path | None = None) -> CaseCard:
    card = CaseCard(case_id, patient_of(case_id), str(image_path), str(label_path) if label_path else None)
    if root is not None and image_path.parent != root and image_path.parent.parent == root:
        card.group = image_path.parent.name
    try:
        image = load_volume(image_path)
        label = load_volume(label_path) if label_path else None
    except DataError as exc:
        card.error = str(exc)
        return card
    fill_image_stats(card, image)
    if label is not None:
        fill_label_stats(card, label)
    return card


def fill_image_stats(card: CaseCard, image: Volume) -> None:
    data = np.asarray(image.array, dtype=np.float32)
    # A strided sample keeps percentiles exact enough and loading fast on large volumes.
    sample = data.ravel()[:: max(1, data.size // 2_000_000)]
    p05, p50, p995 = np.percentile(sample, [0.5, 50, 99.5])
    card.shape = image.shape
    card.spacing = image.spacing
    card.orientation = image.orientation
    card.dtype = str(image.array.dtype)
    card.modality = image.modality
    card.intensity = {
        "p0.5": float(p05),
        "p50": float(p50),
        "p99.5": float(p995),
        "mean": float(sample.mean()),
        "std": float(sample.std()),
    }


def fill_label_stats(card: CaseCard, label: Volume) -> None:
    values = np.unique(np.asarray(label.array))
    card.label_integer = bool(np.all(np.mod(values, 1) == 0))
    card.label_values = [float(v) for v in values[:64]]
    card.label_shape = label.shape
    card.label_spacing = label.spacing


def build_data_card(folder) -> DataCard:
    """Find and describe every case under ``folder``. Unreadable files become card entries with
    their error, so one broken file does not hide the rest; an empty folder is an error."""
    root = Path(folder)
    pairs, unpaired = find_cases(root)
    if not pairs:
        if unpaired:
            raise DataError(root, f"only label maps, no images: {', '.join(unpaired[:5])}")
        raise DataError(root, "no images found (expected NIfTI files, DICOM series, or imagesTr/ + labelsTr/)")
    cases = [describe_case(case_id, image, label, root) for case_id, image, label in pairs]
    return DataCard(str(root), cases, unpaired)
