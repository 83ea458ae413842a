"""Readers for what nibabel and pydicom do not read: ITK's formats through SimpleITK (MetaImage .mha and
.mhd + raw, NRRD and 3D Slicer's .seg.nrrd, ...), 2D pictures through Pillow (PNG, JPEG, 16-bit TIFF,
BMP, GIF) and MedMNIST's .npz archives by their keys (train_images, train_labels, val_*, test_*). Both give the same Volume as every other loader: voxels in (x, y, z[, channel]) order with a
RAS+ affine in mm.

ITK stores geometry in LPS (DICOM's patient coordinates), so its direction, spacing and origin are turned
into a RAS affine. A picture has no patient coordinates: its columns run to the right (R) and its rows
down (P), one pixel per unit unless a spacing is given, so a rendered picture is upright and unmirrored.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.imaging.memory import check_claimed_size, check_memory
from jupyter_medagent.imaging.volume import Volume

ITK_SUFFIXES = (".seg.nrrd", ".mha", ".mhd", ".nrrd", ".nhdr")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_itk_file(path) -> bool:
    return Path(path).name.lower().endswith(ITK_SUFFIXES)


def is_picture(path) -> bool:
    return Path(path).name.lower().endswith(PICTURE_SUFFIXES)


# --------------------------------------------------------------------------- ITK (SimpleITK)
def _itk_reader(path: Path):
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise DataError(path, f"not a readable image ({_itk_message(exc)})") from None
    return reader


def _itk_affine(spacing, direction, origin, dimension: int) -> np.ndarray:
    """A RAS affine from ITK's LPS geometry (a 2D image gets a third axis of its own spacing 1)."""
    lps = np.eye(4)
    matrix = np.asarray(direction, dtype=float).reshape(dimension, dimension)
    lps[:dimension, :dimension] = matrix * np.asarray(spacing, dtype=float)[np.newaxis, :dimension]
    lps[:dimension, 3] = np.asarray(origin, dtype=float)[:dimension]
    return LPS_TO_RAS @ lps


def read_itk_header(path) -> tuple[tuple[int, ...], np.ndarray, str]:
    """(shape in x, y, z[, channel] order, RAS affine, pixel type) without reading the voxels."""
    path = Path(path)
    reader = _itk_reader(path)
    dimension = min(reader.GetDimension(), 3)
    size = tuple(int(s) for s in reader.GetSize())[:dimension]
    shape = size + (1,) * (3 - len(size))
    if reader.GetNumberOfComponents() > 1:
        shape += (int(reader.GetNumberOfComponents()),)
    affine = _itk_affine(reader.GetSpacing()[:dimension], _square(reader.GetDirection(), reader.GetDimension(), dimension),
                         reader.GetOrigin()[:dimension], dimension)
    import SimpleITK as sitk

    return shape, affine, sitk.GetPixelIDValueAsString(reader.GetPixelID())


def load_itk(path) -> Volume:
    """An ITK image (MetaImage, NRRD, ...) as a Volume; a 2D image gets a third axis of length 1, vector pixels
    (RGB) go to the last axis."""
    import SimpleITK as sitk

    path = Path(path)
    reader = _itk_reader(path)
    dimension = reader.GetDimension()
    if path.name.lower().endswith(".seg.nrrd") and reader.GetNumberOfComponents() > 1:
        raise DataError(path, f"a segmentation of {reader.GetNumberOfComponents()} layers (overlapping segments): "
                              "export it from 3D Slicer as a label map to use it as one label per voxel")
    if dimension > 3 and reader.GetNumberOfComponents() == 1:
        raise DataError(path, f"a {dimension}D image: only 2D and 3D ITK images are read (a multi-layer "
                              "segmentation? export it from 3D Slicer as a label map)")
    shape, _, pixel_type = read_itk_header(path)
    bits = re.search(r"(\d+)-bit", pixel_type)
    itemsize = int(bits.group(1)) // 8 if bits else 8
    if path.name.lower().endswith((".mhd", ".nhdr")):  # the voxels are in another file: only memory can be checked
        check_memory(path, shape, itemsize)
    else:
        check_claimed_size(path, shape, itemsize)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise DataError(path, f"not a readable image ({_itk_message(exc)})") from None
    array = sitk.GetArrayFromImage(image)  # (z, y, x[, component]): reversed to x, y, z
    components = image.GetNumberOfComponentsPerPixel()
    spatial = array.ndim - (1 if components > 1 else 0)
    array = np.transpose(array, tuple(reversed(range(spatial))) + ((spatial,) if components > 1 else ()))
    if spatial == 2:
        array = array[:, :, np.newaxis] if components == 1 else array[:, :, np.newaxis, :]
    affine = _itk_affine(image.GetSpacing(), image.GetDirection(), image.GetOrigin(), spatial)
    meta = {"format": _itk_format(path)}
    segments = seg_nrrd_segments(path) if path.name.lower().endswith(".seg.nrrd") else {}
    if segments:
        meta["segments"] = segments
    return Volume(np.ascontiguousarray(array), affine, str(path), _itk_modality(reader), meta)


def seg_nrrd_segments(path) -> dict[int, str]:
    """{label value: segment name} from a 3D Slicer .seg.nrrd header (Segment0_Name, Segment0_LabelValue, ...)."""
    reader = _itk_reader(Path(path))
    keys = set(reader.GetMetaDataKeys())
    segments = {}
    index = 0
    while f"Segment{index}_Name" in keys:
        value_key = f"Segment{index}_LabelValue"
        value = int(reader.GetMetaData(value_key)) if value_key in keys else index + 1
        segments[value] = reader.GetMetaData(f"Segment{index}_Name").strip()
        index += 1
    return segments


def _square(direction, dimension: int, keep: int) -> tuple[float, ...]:
    matrix = np.asarray(direction, dtype=float).reshape(dimension, dimension)
    return tuple(matrix[:keep, :keep].ravel())


def _itk_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".seg.nrrd"):
        return "3D Slicer segmentation (NRRD)"
    if name.endswith((".nrrd", ".nhdr")):
        return "NRRD"
    if name.endswith((".mha", ".mhd")):
        return "MetaImage"
    return "ITK"


def _itk_modality(reader) -> str | None:
    for key in ("Modality", "modality"):
        if key in reader.GetMetaDataKeys():
            value = reader.GetMetaData(key).strip().upper()
            if value.startswith("MET_MOD_"):  # MetaImage's own codes
                return {"MET_MOD_CT": "CT", "MET_MOD_MR": "MR"}.get(value)
            return value or None
    return None


def _itk_message(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception thrown", "/"))]
    return (useful or lines or [type(exc).__name__])[-1][:200]


# --------------------------------------------------------------------------- pictures (Pillow)
def read_picture_header(path) -> tuple[tuple[int, ...], np.ndarray, str]:
    """(shape as (width, height, 1[, channels]), affine, mode) from the file's header alone."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as picture:
            width, height, mode = picture.width, picture.height, picture.mode
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(path, f"not a readable picture ({_first_line(exc)})") from None
    channels = _channels_of(mode)
    shape = (width, height, 1) + ((channels,) if channels > 1 else ())
    return shape, picture_affine(height), mode


def load_picture(path, spacing: tuple[float, float] = (1.0, 1.0), *, preview_side: int | None = None) -> Volume:
    """A PNG/JPEG/TIFF/BMP/GIF as a Volume of shape (width, height, 1) or (width, height, 1, 3): grayscale kept
    grayscale (16-bit TIFF/PNG stay 16-bit), palette and RGBA pictures as RGB.

    ``preview_side``: a JPEG is decoded at the smallest of its DCT scales (1/2, 1/4, 1/8) that keeps at least
    this many pixels a side (other formats are decoded whole): a quick look, not the picture to train on.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as picture:
            picture.seek(0)  # the first frame of a GIF or multi-page TIFF
            mode = picture.mode
            if preview_side and picture.format == "JPEG":
                scale = max(1, min(picture.width, picture.height) // preview_side)
                picture.draft(mode, (picture.width // scale, picture.height // scale))
            if mode in ("P", "PA", "RGBA", "LA", "CMYK", "YCbCr", "LAB", "HSV"):
                picture = picture.convert("RGB" if _channels_of(mode) > 1 or mode == "P" else "L")
            elif mode == "1":
                picture = picture.convert("L")
            pixels = np.asarray(picture)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(path, f"not a readable picture ({_first_line(exc)})") from None
    if mode == "P" and pixels.ndim == 3 and _is_gray(pixels):
        pixels = pixels[..., 0]  # a palette of greys (GIF masks, as DRIVE ships them)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    array = np.swapaxes(pixels, 0, 1)[:, :, np.newaxis]  # rows, columns -> x (columns), y (rows), 1
    meta = {"format": f"picture ({path.suffix.lstrip('.').upper()}, {mode})"}
    return Volume(np.ascontiguousarray(array), picture_affine(pixels.shape[0], spacing), str(path), None, meta)


def picture_affine(height: int, spacing: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Columns to the right (R), rows downwards (P): reoriented to RAS, a picture stays upright."""
    affine = np.diag([float(spacing[0]), -float(spacing[1]), 1.0, 1.0])
    affine[1, 3] = (height - 1) * float(spacing[1])
    return affine


def _channels_of(mode: str) -> int:
    return 1 if mode in ("1", "L", "I", "F", "I;16", "I;16B", "I;16L", "I;16N") else 3


def _is_gray(pixels: np.ndarray) -> bool:
    return bool(np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2]))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- MedMNIST .npz
MEDMNIST_SPLITS = {"train": "training", "val": "validation", "test": "testing"}


def npz_keys(path) -> dict[str, tuple[int, ...]]:
    """{key: shape} of an .npz file's arrays, from the archive's headers alone (no array is decompressed)."""
    import zipfile

    from numpy.lib import format as npy

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            shapes = {}
            for name in archive.namelist():
                with archive.open(name) as member:
                    major, _ = npy.read_magic(member)
                    read_header = npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0
                    shape = read_header(member)[0]
                shapes[name.removesuffix(".npy")] = tuple(int(s) for s in shape)
            return shapes
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(path, f"not a readable .npz archive ({_first_line(exc)})") from None


@lru_cache(maxsize=4)
def _npz_array(path: str, key: str) -> np.ndarray:
    try:
        with np.load(path) as archive:
            return archive[key]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise DataError(Path(path), f"cannot read {key} ({_first_line(exc)})") from None


def npz_labels(path, split: str) -> np.ndarray:
    """A MedMNIST split's labels, (n, 1) class indices or (n, k) binary findings (ChestMNIST)."""
    return _npz_array(str(path), f"{split}_labels")


def load_npz_image(path, split: str, index: int) -> Volume:
    """Image ``index`` of a MedMNIST split (``train_images[index]``): 2D (28 x 28 [x 3]) or 3D (28 x 28 x 28)
    variants, in (x, y[, z][, colour]) order with one unit per pixel."""
    images = _npz_array(str(path), f"{split}_images")
    if not 0 <= index < len(images):
        raise DataError(Path(path), f"{split}_images has no image {index} (it holds {len(images)})")
    pixels = np.asarray(images[index])
    if pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (3, 4)):  # a picture: rows, columns[, colour]
        array = np.swapaxes(pixels, 0, 1)[:, :, np.newaxis]
        affine = picture_affine(pixels.shape[0])
    else:  # a 3D variant (OrganMNIST3D, ...): z, y, x as MedMNIST stores it
        array = np.transpose(pixels, (2, 1, 0))
        affine = np.eye(4)
    return Volume(np.ascontiguousarray(array), affine, f"{path}", None, {"format": "MedMNIST .npz"})
