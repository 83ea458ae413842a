"""Load NIfTI, DICOM, ITK formats (SimpleITK), pictures (Pillow) and anything nibabel reads into one Volume type; save NIfTI.

A 4D file (a cine) can be read one frame at a time through nibabel's array proxy, so a data card of a
hundred cines never holds them in memory. Before any array is allocated, the size the header claims is
checked against the file and against free memory: a 64-byte file claiming 1500^3 voxels is an error
that names the file, not a MemoryError. Identifying DICOM tags never reach a Volume (imaging/dicom.py).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.imaging import dicom
from jupyter_medagent.imaging.formats import (
    is_itk_file, is_picture, load_itk, load_picture, read_itk_header, read_picture_header,
)
from jupyter_medagent.imaging.memory import check_claimed_size
from jupyter_medagent.imaging.volume import Volume

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def load_volume(path, *, frame: int | None = None, files: list[str] | None = None,
                expect_ndim: int | None = None) -> Volume:
    """Load a NIfTI/nibabel file, an ITK file (.mha, .mhd, .nrrd), a picture (PNG, JPEG, TIFF, BMP, GIF), a DICOM
    file, a DICOM series folder, or the DICOM files of one series.

    Args:
        path: the file or series folder (a data card's ``image_path`` / ``label_path``).
        frame: one frame (0-based) of a 4D file; None loads every frame.
        files: the DICOM files of one series, as the data card lists them (``path`` is then their folder).
        expect_ndim: 3 rejects 4D data with an error that says how to pick a frame.

    Returns:
        Volume (``array``, ``affine``; ``spacing`` and ``axcodes`` derived from the affine).
    """
    path = Path(path)
    if files:
        volume = dicom.load_series([Path(f) for f in files], path)
    elif not path.exists():
        raise DataError(path, "no such file or folder")
    elif path.is_dir():
        volume = dicom.load_series_folder(path)
    elif path.stat().st_size == 0:
        raise DataError(path, "the file is empty")
    elif is_itk_file(path):
        volume = load_itk(path)
    elif is_picture(path):
        volume = load_picture(path)
    elif dicom.is_dicom(path):
        volume = dicom.load_series([path], path)
    else:
        volume = _load_nibabel(path, frame)
    if expect_ndim is not None and volume.array.ndim != expect_ndim:
        hint = " (4D: pick one frame, e.g. volume.array[..., t])" if volume.array.ndim == 4 else ""
        raise DataError(path, f"expected a {expect_ndim}D image but it is {volume.array.ndim}D with shape {volume.shape}{hint}")
    return volume


def read_header(path) -> tuple[tuple[int, ...], np.ndarray, str]:
    """(shape, affine, dtype) of a NIfTI/nibabel, ITK or picture file without reading its voxels."""
    path = Path(path)
    if is_itk_file(path):
        return read_itk_header(path)
    if is_picture(path):
        return read_picture_header(path)
    try:
        image = nib.load(str(path))
    except (nib.filebasedimages.ImageFileError, EOFError, OSError, ValueError, zlib.error) as exc:
        raise DataError(path, f"not a readable image ({_first_line(exc)})") from None
    return tuple(int(s) for s in image.shape), np.asarray(image.affine, dtype=float), str(image.get_data_dtype())


def save_volume(volume: Volume, path) -> Path:
    """Write a Volume as NIfTI (compressed when the name ends in .gz).

    Args:
        volume: the Volume to write (its affine is kept).
        path: the file name, inside the run's output folder.

    Returns:
        the Path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(volume.array)
    if array.dtype in (np.int64, np.uint64, np.bool_):  # NIfTI readers expect 32-bit labels; nibabel refuses int64
        array = array.astype(np.int32)
    nib.save(nib.Nifti1Image(array, volume.affine), str(path))
    return path


# --------------------------------------------------------------------------- NIfTI & co
def _load_nibabel(path: Path, frame: int | None) -> Volume:
    if path.name.endswith(".gz"):
        with open(path, "rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                raise DataError(path, "named .gz but is not gzip-compressed (a text or other file renamed?)")
    try:
        image = nib.load(str(path))
        shape = tuple(int(s) for s in image.shape)
        check_claimed_size(path, shape if frame is None else shape[:3], image.get_data_dtype().itemsize,
                           whole_file_shape=shape)
        if frame is not None:
            if len(shape) < 4 or not 0 <= frame < shape[3]:
                frames = shape[3] if len(shape) >= 4 else 1
                raise DataError(path, f"has no frame {frame} (it has {frames} frame{'s' if frames != 1 else ''}, "
                                      f"numbered from 0)")
            array = np.asanyarray(image.dataobj[..., frame])  # only this frame is read into memory
        else:
            array = np.asanyarray(image.dataobj)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(path, f"corrupt or truncated gzip data ({_first_line(exc)})") from None
    except (nib.filebasedimages.ImageFileError, OSError, ValueError) as exc:
        broken = _gzip_problem(path) if path.name.endswith(".gz") else None
        raise DataError(path, f"corrupt or truncated gzip data ({broken})" if broken
                        else f"not a readable image ({_first_line(exc)})") from None
    if array.ndim < 2:
        raise DataError(path, f"not an image: the array has {array.ndim} dimension(s)")
    if array.ndim == 2:
        array = array[..., np.newaxis]
    meta = {"format": type(image).__name__}
    if frame is not None:
        meta["frame"] = frame
    return Volume(array, np.asarray(image.affine, dtype=float), str(path), None, meta)


def _gzip_problem(path: Path) -> str | None:
    """Why a gzip stream is broken, or None if it is whole (only asked once a read has failed)."""
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(1 << 22):
                pass
    except (EOFError, OSError, zlib.error) as exc:
        return _first_line(exc)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
