"""The data card: what is in a folder of scans, case by case, in derived numbers only.

Like nnU-Net's data fingerprint, it is what the pipeline's configuration is derived from (spacing,
anisotropy, modality, label set), and like a radiologist's first look it lists what does not fit. The
layout (ACDC, M&Ms, MSD, nnU-Net, BIDS, DICOM, plain pairs) is recognised by name; cines are attached
to their patients from their headers alone, and cases are read one at a time, so a card of a hundred
4D cines stays small in memory. It never holds voxels or identifying tags, so its text form may be
shown to a model.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.imaging.formats import (
    MEDMNIST_SPLITS, is_picture, load_npz_image, load_picture, read_picture_header,
)
from jupyter_medagent.imaging.io import load_volume, read_header
from jupyter_medagent.imaging.layouts import Discovery, Entry, discover, patient_of
from jupyter_medagent.imaging.volume import Volume

__all__ = ["CaseCard", "DataCard", "build_data_card", "load_pair", "patient_of", "ras_shape"]

STATS_SAMPLE = 2_000_000  # voxels sampled for intensity percentiles
PREVIEW_SIDE = 256  # pictures without a mask are described from a decode about this large
CARD_THREADS = 4
MAX_MASK_LABEL = 20  # a 2D mask holding only integers up to this is a label map of several structures


@dataclass
class CaseCard:
    case_id: str
    patient_id: str
    image_path: str
    label_path: str | None
    image_frame: int | None = None  # a frame of a 4D file
    label_frame: int | None = None
    image_files: list[str] | None = None  # the files of a DICOM series
    label_kind: str = "image"  # "image" or "dicom-seg"
    phase: str | None = None  # "ED" or "ES" when the layout says so
    split: str | None = None  # "training" or "testing" when the layout says so
    channels: int = 1
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
    labels: list[str] | None = None  # multi-label findings from a label table
    pixel_hash: str = ""  # of the decoded pixels: identical images under different names
    label_encoding: str | None = None  # how a 2D mask stores its foreground (0/1, 0/255, lossy grey levels)
    mask_files: list[str] | None = None  # the masks of one image, merged (BUSI's _mask, _mask_1)
    format: str = ""
    photometric: str | None = None  # "MONOCHROME1, inverted ..." for such radiographs
    error: str | None = None  # why the case could not be read

    @property
    def source(self) -> str:
        """Where the image is, in words (a frame of a cine, a DICOM series, a file)."""
        if self.image_files:
            return f"DICOM series of {len(self.image_files)} file(s) in {Path(self.image_path).name}"
        if self.image_frame is not None:
            return f"frame {self.image_frame} of {Path(self.image_path).name}"
        return Path(self.image_path).name


@dataclass
class DataCard:
    folder: str
    cases: list[CaseCard]
    unpaired_labels: list[str] = field(default_factory=list)
    layout: str = ""
    cines: list[dict[str, Any]] = field(default_factory=list)  # patient, path, frames, shape, spacing, ed, es
    patients_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)  # Info.cfg, CSV rows (non-identifying)
    layout_findings: list[Any] = field(default_factory=list)  # Findings about the layout itself
    label_names: dict[int, str] = field(default_factory=dict)
    layout_convention: str | None = None  # a label convention the layout itself defines
    stated_modality: str | None = None  # as the data set's metadata states it
    skipped: list[str] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    # Identifying values met while reading (DICOM names, IDs, ...): for redacting text, never shown or serialised.
    identifiers: set[str] = field(default_factory=set, repr=False)

    # ----------------------------------------------------------------- across cases
    @property
    def readable(self) -> list[CaseCard]:
        return [c for c in self.cases if c.error is None]

    @property
    def median_spacing(self) -> tuple[float, ...]:
        spacings = np.array([c.spacing[:3] for c in self.readable if len(c.spacing) >= 3])
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
        if not modalities and self.stated_modality:
            return self.stated_modality
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
    def dims(self) -> int:
        """2 when every readable case is a single 2D picture or slice (a third axis of length 1), else 3."""
        shapes = [c.shape for c in self.readable if c.shape]
        return 2 if shapes and all(len(s) >= 3 and s[2] == 1 for s in shapes) else 3

    @property
    def readers(self) -> list[str]:
        """Which library read which files (pictures with Pillow, ITK formats with SimpleITK, ...), with counts."""
        counts = Counter(c.format for c in self.readable if c.format)
        return [f"{n} x {fmt} by {_reader_of(fmt)}" for fmt, n in sorted(counts.items())]

    @property
    def multi_labels(self) -> list[str]:
        """Every finding label a multi-label table names (NIH's ``Finding Labels``), in order."""
        return sorted({name for c in self.cases if c.labels for name in c.labels})

    @property
    def splits(self) -> dict[str, int]:
        """Cases per split, as the data set gives its splits (training, validation, testing)."""
        return dict(sorted(Counter(c.split for c in self.cases if c.split).items()))

    @property
    def channels(self) -> dict[int, int]:
        """{channels: cases}: 1 for grayscale, 3 for RGB pictures."""
        return dict(sorted(Counter(c.channels for c in self.readable).items()))

    @property
    def patients(self) -> list[str]:
        return sorted({c.patient_id for c in self.cases} | {c["patient"] for c in self.cines})

    def to_dict(self) -> dict:
        """The card as JSON-ready data (what inspect_data hands the planner).

        Returns:
            dict with folder, layout, n_cases, n_labelled, n_patients, median_spacing, median_shape, anisotropy,
            modality, label_values, label_names and the per-case entries.
        """
        return {
            "folder": self.folder,
            "layout": self.layout,
            "n_cases": len(self.cases),
            "n_labelled": sum(c.label_path is not None for c in self.cases),
            "n_patients": len(self.patients),
            "median_spacing": self.median_spacing,
            "median_shape": self.median_shape,
            "anisotropy": round(self.anisotropy, 2),
            "modality": self.modality,
            "label_values": self.label_values,
            "label_names": {str(k): v for k, v in self.label_names.items()},
            "layout_convention": self.layout_convention,
            "classes": self.classes,
            "dims": self.dims,
            "channels": {str(k): v for k, v in self.channels.items()},
            "multi_labels": self.multi_labels,
            "splits": self.splits,
            "unpaired_labels": self.unpaired_labels,
            "cines": self.cines,
            "patients_metadata": self.patients_metadata,
            "skipped": self.skipped,
            "series": self.series,
            "cases": [asdict(c) for c in self.cases],
        }

    def to_text(self) -> str:
        """A compact summary for a model: a header, then one line per case.

        Returns:
            the summary as text (what inspect_data shows; print it rather than the card's repr).
        """
        spacing = " x ".join(f"{s:.2f}" for s in self.median_spacing)
        lines = [
            f"Data folder: {Path(self.folder).name} ({self.layout or 'layout not recognised'}) — {len(self.cases)} cases "
            f"from {len(self.patients)} patients, {sum(c.label_path is not None for c in self.cases)} with label maps.",
            f"Median spacing {spacing} mm (anisotropy {self.anisotropy:.1f}); modality {self.modality or 'not stated'}; "
            f"label values {self.label_values}" + (f" named {self.label_names}" if self.label_names else "") + ".",
        ]
        if self.cines:
            frames = sorted({c["frames"] for c in self.cines})
            named = sum(c["ed"] is not None for c in self.cines)
            lines.append(f"Cines (4D, {'/'.join(map(str, frames))} frames) attached to {len(self.cines)} patients; "
                         f"ED/ES frames known for {named} of them.")
        if self.patients_metadata:
            keys = sorted({k for m in self.patients_metadata.values() for k in m})
            lines.append(f"Patient metadata for {len(self.patients_metadata)} patients: {', '.join(keys)}.")
        if self.classes:
            counts = {g: sum(c.group == g for c in self.cases) for g in self.classes}
            lines.append(f"Classes{' from sub-folders' if 'folder' in self.layout else ''}: " + ", ".join(f"{g} ({n})" for g, n in counts.items()))
        if self.readers:
            lines.append("Read with: " + "; ".join(self.readers) + ".")
        if self.multi_labels:
            counts = Counter(name for c in self.cases if c.labels for name in c.labels)
            lines.append("Multi-label findings from the label table: " + ", ".join(f"{n} ({counts[n]})"
                                                                                 for n in self.multi_labels))
        if self.splits:
            lines.append("Splits as given: " + ", ".join(f"{name} {n}" for name, n in self.splits.items()))
        if self.dims == 2 and len(self.channels) > 1:
            lines.append("Channels: " + ", ".join(f"{n} x {k}-channel" for k, n in self.channels.items()))
        if self.unpaired_labels:
            lines.append(f"Label maps without an image: {', '.join(self.unpaired_labels)}")
        lines += self.series_lines()
        if self.skipped:
            reasons = Counter(item.split(": ", 1)[-1] for item in self.skipped)
            lines.append("Listed and not used: " + "; ".join(f"{n} x {reason}" for reason, n in reasons.items()))
        for c in self.cases:
            if c.error:
                lines.append(f"- {c.case_id}: UNREADABLE ({c.error})")
                continue
            i = c.intensity
            label = "no label" if c.label_path is None else f"labels {_fmt_values(c)}"
            extra = "".join(f", {x}" for x in (c.phase, c.split, f"{c.channels} channels" if c.channels > 1 else None) if x)
            lines.append(
                f"- {c.case_id}: {'x'.join(map(str, c.shape))} {c.dtype}, spacing {_fmt_spacing(c.spacing)}, "
                f"{''.join(c.orientation)}, intensity p0.5/p50/p99.5 {i['p0.5']:.4g}/{i['p50']:.4g}/{i['p99.5']:.4g}, "
                f"{label}{extra}"
            )
        return "\n".join(lines)

    def series_lines(self) -> list[str]:
        """DICOM series grouped by patient and study, with modality and slice count.

        Returns:
            list of text lines (empty for a folder without DICOM series).
        """
        lines, last = [], None
        for s in self.series:
            if (s["patient"], s["study"]) != last:
                lines.append(f"{s['patient']} / {s['study']}:")
                last = (s["patient"], s["study"])
            lines.append(f"  {s['series']}: {s['modality']}, {s['slices']} slice(s) -> case(s) {', '.join(s['cases'])}")
        return lines

    def _repr_markdown_(self) -> str:
        header = ("| case | patient | shape | spacing (mm) | orientation | intensity p0.5–p99.5 | labels |\n"
                  "|---|---|---|---|---|---|---|")
        rows = []
        for c in self.cases:
            if c.error:
                rows.append(f"| {c.case_id} | {c.patient_id} | unreadable: {c.error.replace('|', '/')} | | | | |")
                continue
            rows.append(
                f"| {c.case_id} | {c.patient_id} | {'×'.join(map(str, c.shape))} | {_fmt_spacing(c.spacing)} | "
                f"{''.join(c.orientation)} | {c.intensity['p0.5']:.4g}–{c.intensity['p99.5']:.4g} | "
                f"{'—' if c.label_path is None else _fmt_values(c)} |"
            )
        spacing = " × ".join(f"{s:.2f}" for s in self.median_spacing)
        readers = f" · read with {'; '.join(self.readers)}" if self.readers else ""
        summary = (
            f"**{len(self.cases)} cases, {len(self.patients)} patients** · {self.layout} · median spacing {spacing} mm · "
            f"anisotropy {self.anisotropy:.1f} · label values {self.label_values}{readers}"
        )
        if self.cines:
            summary += f" · {len(self.cines)} cines"
        return summary + "\n\n" + header + "\n" + "\n".join(rows)


def ras_shape(shape: tuple[int, ...], orientation: tuple[str, ...]) -> tuple[int, int, int]:
    """The first three sizes of ``shape`` in R, A, S order (what reorienting to RAS makes of them)."""
    import nibabel as nib

    ornt = nib.orientations.axcodes2ornt(orientation)
    out = [0, 0, 0]
    for voxel_axis, (world_axis, _) in enumerate(ornt[:3]):
        out[int(world_axis)] = int(shape[voxel_axis])
    return tuple(out)


def _reader_of(fmt: str) -> str:
    if fmt.startswith("picture"):
        return "Pillow"
    if fmt.startswith(("MetaImage", "NRRD", "3D Slicer", "ITK")):
        return "SimpleITK"
    if fmt.startswith("DICOM"):
        return "pydicom" if fmt == "DICOM" else "highdicom"
    if fmt.startswith("MedMNIST"):
        return "numpy (by its keys)"
    return "nibabel"


def _fmt_spacing(spacing) -> str:
    return "×".join(f"{s:.2f}" for s in spacing[:3])


def _fmt_values(card: CaseCard) -> str:
    if not card.label_integer:
        return f"NON-INTEGER ({len(card.label_values)} distinct values)"
    return str([int(v) for v in card.label_values])


# --------------------------------------------------------------------------- reading cases
def load_pair(case: CaseCard) -> tuple[Volume, Volume | None]:
    """A case's image and label map as the layout describes them (a frame, a DICOM series, a SEG, 2D masks).

    Args:
        case: one of ``card.cases``.

    Returns:
        (image Volume, label Volume or None when the case has no label).
    """
    image = load_image(case)
    return image, load_label(case, image)


def load_image(case: CaseCard) -> Volume:
    """A case's image: a file, a frame of a cine, a DICOM series, or one image of a MedMNIST archive."""
    if case.image_path.endswith(".npz"):
        split_key = {v: k for k, v in MEDMNIST_SPLITS.items()}[case.split]
        return load_npz_image(case.image_path, split_key, case.image_frame)
    return load_volume(case.image_path, frame=case.image_frame, files=case.image_files)


def load_label(case: CaseCard, image: Volume) -> Volume | None:
    """A case's label map (None without one); a DICOM SEG is put on its image's grid."""
    from jupyter_medagent.imaging.dicom import load_seg

    if case.label_path is None:
        return None
    if case.label_kind == "dicom-seg":
        return load_seg(Path(case.label_path), image)
    if case.label_kind == "mask":
        return load_mask(case.mask_files or [case.label_path])
    return load_volume(case.label_path, frame=case.label_frame)


def load_mask(paths: list[str]) -> Volume:
    """A 2D mask, or the masks of one image merged (BUSI's ``_mask`` and ``_mask_1``), with foreground 1.

    Masks stored as 0/255 become 0/1; a mask with grey levels (saved as JPEG, or anti-aliased) is thresholded
    at half its maximum; a few small integers are kept as label values. ``meta["mask_encoding"]`` says which.
    """
    merged, encodings = None, []
    for path in paths:
        mask = load_volume(path)
        array = np.asarray(mask.array)
        if array.ndim == 4:  # an RGB mask: foreground wherever any channel is set
            array = array.max(axis=3)
        values = np.unique(array)
        if set(values.tolist()) <= {0, 1}:
            encodings.append("0/1")
        elif set(values.tolist()) <= {0, 255}:
            array, encodings = (array > 0), encodings + ["0/255"]
        elif np.all(np.mod(values, 1) == 0) and values.max() <= MAX_MASK_LABEL and values.size <= MAX_MASK_LABEL + 1:
            encodings.append("label values")
        else:
            array = array >= values.max() / 2
            encodings.append(f"{values.size} grey levels (lossy compression or anti-aliasing), thresholded at half "
                             "the maximum")
        array = np.asarray(array, dtype=np.uint8)
        if merged is not None and merged.shape != array.shape:
            raise DataError(path, f"mask of size {array.shape[0]}x{array.shape[1]} differs from the first mask of "
                                  f"this image ({merged.shape[0]}x{merged.shape[1]})")
        merged = array if merged is None else np.maximum(merged, array)
        affine = mask.affine
    meta = {"format": "mask", "mask_encoding": "; ".join(sorted(set(encodings)))}
    if len(paths) > 1:
        meta["merged"] = len(paths)
    return Volume(merged, affine, str(paths[0]), None, meta)


def describe_case(entry: Entry) -> CaseCard:
    card = CaseCard(entry.case_id, entry.patient_id, entry.image.path, entry.label.path if entry.label else None,
                    entry.image.frame, entry.label.frame if entry.label else None, entry.image.files,
                    entry.label.kind if entry.label else "image", entry.phase, entry.split, entry.channels,
                    group=entry.group, labels=entry.labels,
                    mask_files=entry.label.files if entry.label and entry.label.kind == "mask" else None)
    try:
        if is_picture(card.image_path) and card.label_path is None:
            # A picture without a mask is described from a reduced decode (JPEG's DCT scaling: several times
            # faster on a radiograph of 2,000 pixels a side); its size comes from the header.
            image = load_picture(card.image_path, preview_side=PREVIEW_SIDE)
            fill_image_stats(card, image)
            card.shape = read_picture_header(card.image_path)[0]
        else:
            image = load_image(card)
            fill_image_stats(card, image)
        label = load_label(card, image)
    except DataError as exc:
        card.error = str(exc)
        return card
    if label is not None:
        fill_label_stats(card, label)
    return card


def fill_image_stats(card: CaseCard, image: Volume) -> None:
    data = np.asarray(image.array)
    if data.dtype.kind not in "iub":  # integers cannot be NaN
        finite = np.isfinite(data)
        if not finite.all():
            bad = int(data.size - finite.sum())
            what = "all" if bad == data.size else f"{bad:,} of {data.size:,}"
            raise DataError(image.path, f"{what} voxels are NaN or infinite: the image holds no usable intensities"
                            if bad == data.size else f"{what} voxels are NaN or infinite")
    # A strided sample keeps percentiles exact enough and loading fast on large volumes.
    sample = data.ravel()[:: max(1, data.size // STATS_SAMPLE)].astype(np.float32)
    p05, p50, p995 = np.percentile(sample, [0.5, 50, 99.5])
    card.shape = image.shape
    card.spacing = image.spacing
    card.orientation = image.orientation
    card.dtype = str(image.array.dtype)
    card.modality = image.modality
    card.format = str(image.meta.get("format", ""))
    card.photometric = image.meta.get("photometric")
    if card.format.startswith(("picture", "MedMNIST")):
        card.channels = image.shape[3] if image.array.ndim == 4 else 1
    card.pixel_hash = hashlib.blake2b(np.ascontiguousarray(image.array).tobytes(), digest_size=16).hexdigest()
    card.intensity = {"p0.5": float(p05), "p50": float(p50), "p99.5": float(p995), "mean": float(sample.mean()),
                      "std": float(sample.std())}


def fill_label_stats(card: CaseCard, label: Volume) -> None:
    values = np.unique(np.asarray(label.array))
    card.label_integer = bool(np.all(np.mod(values, 1) == 0))
    card.label_values = [float(v) for v in values[:64]]
    card.label_shape = label.shape
    card.label_encoding = label.meta.get("mask_encoding")
    card.label_spacing = label.spacing


def describe_cine(cine) -> dict[str, Any]:
    """A cine from its header alone: no voxel is read."""
    import nibabel as nib

    shape, affine, _ = read_header(cine.source.path)
    return {"patient": cine.patient_id, "path": cine.source.path, "frames": shape[3] if len(shape) >= 4 else 1,
            "shape": list(shape), "spacing": [float(s) for s in nib.affines.voxel_sizes(affine)],
            "ed": cine.ed, "es": cine.es}


def build_data_card(folder) -> DataCard:
    """Find and describe every case under ``folder``. Unreadable files become card entries with their error,
    so one broken file does not hide the rest; a folder without any image is an error.

    Args:
        folder: the data folder (read-only).

    Returns:
        DataCard: ``cases`` (CaseCard: case_id, patient_id, image_path, label_path, shape, spacing, ...),
        ``cines``, ``patients``, ``modality``, ``label_values``, ``label_names``, ``anisotropy``; ``to_text()``
        summarises it.
    """
    root = Path(folder)
    found: Discovery = discover(root)
    if not found.entries and not found.cines:
        if found.unpaired_labels:
            raise DataError(root, f"only label maps, no images: {', '.join(found.unpaired_labels[:5])}")
        raise DataError(root, "no images found (expected NIfTI files, DICOM series, or imagesTr/ + labelsTr/)")
    cines = []
    for cine in found.cines:
        try:
            cines.append(describe_cine(cine))
        except DataError as exc:
            found.findings.append(_unreadable_cine(cine, exc))
    # Cases are read in parallel threads: decoding (zlib, JPEG) and numpy release the GIL.
    with ThreadPoolExecutor(max_workers=max(1, min(CARD_THREADS, os.cpu_count() or 1))) as pool:
        cases = list(pool.map(describe_case, found.entries))
    return DataCard(str(root), cases, found.unpaired_labels, found.layout, cines,
                    found.patients, found.findings, found.label_names, found.convention, found.modality,
                    found.skipped, found.series, found.identifiers)


def _unreadable_cine(cine, exc: DataError):
    from jupyter_medagent.judge.findings import Finding

    return Finding(cine.patient_id, "unreadable", "error", str(exc), {"path": cine.source.path})
