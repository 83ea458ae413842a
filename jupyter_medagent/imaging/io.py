"""Load NIfTI, DICOM and anything nibabel reads into one Volume type; save NIfTI; reorient.

Identifying DICOM tags (patient name, ID, birth date, ...) are never read into a
Volume: only the whitelisted, non-identifying fields below reach ``Volume.meta``.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from jupyter_medagent.errors import DataError
from jupyter_medagent.imaging.volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
# DICOM patient-coordinate (LPS) to nibabel world (RAS): flip x and y.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def load_volume(path, *, expect_ndim: int | None = None) -> Volume:
    """Load a NIfTI/nibabel file, a DICOM file or a DICOM series folder.

    ``expect_ndim=3`` rejects 4D data with an error that says how to pick a frame.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file or folder")
    if path.is_dir():
        volume = _load_dicom_series(path)
    elif path.stat().st_size == 0:
        raise DataError(path, "the file is empty")
    elif _is_dicom(path):
        volume = _load_dicom_files([path], path)
    else:
        volume = _load_nibabel(path)
    if expect_ndim is not None and volume.array.ndim != expect_ndim:
        hint = " (4D: pick one frame, e.g. volume.array[..., t])" if volume.array.ndim == 4 else ""
        raise DataError(path, f"expected a {expect_ndim}D image but it is {volume.array.ndim}D with shape {volume.shape}{hint}")
    return volume


def save_volume(volume: Volume, path) -> Path:
    """Write a Volume as NIfTI (compressed when the name ends in .gz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(volume.array)
    if array.dtype in (np.int64, np.uint64, np.bool_):  # NIfTI readers expect 32-bit labels; nibabel refuses int64
        array = array.astype(np.int32)
    nib.save(nib.Nifti1Image(array, volume.affine), str(path))
    return path


def reorient(volume: Volume, axcodes: tuple[str, ...] = ("R", "A", "S")) -> Volume:
    """Permute/flip voxel axes so they point along ``axcodes``. No interpolation, so labels stay exact."""
    current = nib.orientations.io_orientation(volume.affine)
    target = nib.orientations.axcodes2ornt(axcodes)
    transform = nib.orientations.ornt_transform(current, target)
    spatial = volume.array.shape[:3]
    array = nib.orientations.apply_orientation(volume.array, transform)
    affine = volume.affine @ nib.orientations.inv_ornt_aff(transform, spatial)
    return Volume(np.ascontiguousarray(array), affine, volume.path, volume.modality, dict(volume.meta))


# --------------------------------------------------------------------------- NIfTI & co
def _load_nibabel(path: Path) -> Volume:
    if path.name.endswith(".gz"):
        _check_gzip(path)
    try:
        image = nib.load(str(path))
        array = np.asanyarray(image.dataobj)
    except (nib.filebasedimages.ImageFileError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise DataError(path, f"not a readable image ({_first_line(exc)})") from None
    if array.ndim < 2:
        raise DataError(path, f"not an image: the array has {array.ndim} dimension(s)")
    if array.ndim == 2:
        array = array[..., np.newaxis]
    meta = {"format": type(image).__name__}
    return Volume(array, np.asarray(image.affine, dtype=float), str(path), None, meta)


def _check_gzip(path: Path) -> None:
    """A truncated gzip or a text file named .gz fails late inside nibabel; say so plainly."""
    with open(path, "rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            raise DataError(path, "named .gz but is not gzip-compressed (a text or other file renamed?)")
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(1 << 22):
                pass
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(path, f"corrupt or truncated gzip data ({_first_line(exc)})") from None


# --------------------------------------------------------------------------- DICOM
def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if path.name.endswith(NIFTI_SUFFIXES):
        return False
    with open(path, "rb") as handle:
        header = handle.read(132)
    return header[128:132] == b"DICM"


def _load_dicom_series(folder: Path) -> Volume:
    files = sorted(p for p in folder.iterdir() if p.is_file() and _is_dicom(p))
    if not files:
        raise DataError(folder, "folder holds no DICOM files")
    return _load_dicom_files(files, folder)


def _read_dicom(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(str(path))
    except Exception as exc:  # pydicom raises many types for broken files
        raise DataError(path, f"not a readable DICOM file ({_first_line(exc)})") from None


def _load_dicom_files(files: list[Path], source: Path) -> Volume:
    datasets = [_read_dicom(p) for p in files]
    for path, ds in zip(files, datasets):
        if "PixelData" not in ds:
            raise DataError(path, "DICOM file has no pixel data (a report, DICOMDIR or structured document?)")
    first = datasets[0]
    orientation = np.array(getattr(first, "ImageOrientationPatient", [1, 0, 0, 0, 1, 0]), dtype=float)
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    if len(datasets) > 1:
        datasets.sort(key=lambda ds: float(np.dot(normal, np.array(ds.ImagePositionPatient, dtype=float))))
    slices = [_dicom_pixels(ds, path) for ds, path in zip(datasets, files)]
    shapes = {s.shape for s in slices}
    if len(shapes) != 1:
        raise DataError(source, f"DICOM slices differ in size: {sorted(shapes)}")
    # pydicom gives (rows, cols); nibabel's convention is (x=column index, y=row index, z).
    stack = np.stack([s.T for s in slices], axis=-1) if slices[0].ndim == 2 else slices[0].transpose(2, 1, 0)
    row_spacing, col_spacing = (float(v) for v in getattr(first, "PixelSpacing", [1.0, 1.0]))
    origin = np.array(getattr(first, "ImagePositionPatient", [0.0, 0.0, 0.0]), dtype=float)
    if len(datasets) > 1:
        last = np.array(datasets[-1].ImagePositionPatient, dtype=float)
        step = (last - origin) / (len(datasets) - 1)
    else:
        thickness = float(getattr(first, "SpacingBetweenSlices", 0) or getattr(first, "SliceThickness", 1.0) or 1.0)
        step = normal * thickness
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_dir * col_spacing  # moving along a row = next column
    affine_lps[:3, 1] = col_dir * row_spacing
    affine_lps[:3, 2] = step
    affine_lps[:3, 3] = origin
    modality = str(getattr(first, "Modality", "")) or None
    meta = {"format": "DICOM", "slices": len(datasets)}
    slope = float(getattr(first, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(first, "RescaleIntercept", 0.0) or 0.0)
    if (slope, intercept) != (1.0, 0.0):
        stack = stack.astype(np.float32) * slope + intercept
        meta["rescaled"] = "Hounsfield units" if modality == "CT" else "rescale slope/intercept applied"
    return Volume(stack, LPS_TO_RAS @ affine_lps, str(source), modality, meta)


def _dicom_pixels(ds, path: Path) -> np.ndarray:
    try:
        return np.asarray(ds.pixel_array)
    except Exception as exc:
        raise DataError(path, f"DICOM pixel data cannot be decoded ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
