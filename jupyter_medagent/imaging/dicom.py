"""DICOM as it comes off a scanner or a PACS export: files found by their DICM preamble whatever their
names, series by SeriesInstanceUID, slices ordered along the slice normal, enhanced (multi-frame) images
and DICOM SEG label maps through highdicom, CT rescaled to Hounsfield units, compressed transfer syntaxes
decoded by the pylibjpeg/pyjpegls plugins pydicom finds on its own.

Identifying tags (names, IDs, dates, institutions, ...) are never copied into a Volume or a card. Their
values can be collected (``identifying_values``) so that text shown to a model can be checked against them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.imaging.orientation import aligned_to
from jupyter_medagent.imaging.volume import Volume

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # DICOM patient coordinates (LPS) to nibabel world (RAS)
SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
# DICOM attributes that identify a patient, a visit or the people and place involved (PS3.15 E.1 basic
# profile): their values are collected only to be redacted, never shown.
IDENTIFYING_TAGS = ("PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthDate",
                    "PatientBirthName", "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers",
                    "MedicalRecordLocator", "AccessionNumber", "InstitutionName", "InstitutionAddress",
                    "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName", "NameOfPhysiciansReadingStudy",
                    "RequestingPhysician", "ResponsiblePerson", "IssuerOfPatientID", "StudyID")


def is_dicom(path: Path) -> bool:
    """A DICOM file by its name, or by the DICM preamble that files without an extension still carry."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if path.name.lower().endswith((".nii", ".nii.gz", ".gz", ".json", ".csv", ".txt", ".cfg", ".md")):
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def read_header(path: Path):
    """The dataset without its pixel data (fast, for discovery)."""
    import pydicom

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many types for broken files
        raise DataError(path, f"not a readable DICOM file ({_first_line(exc)})") from None


def identifying_values(ds) -> set[str]:
    """The values of identifying attributes in ``ds`` (to redact them from text, never to show them)."""
    values = set()
    for keyword in IDENTIFYING_TAGS:
        value = ds.get(keyword)
        if value in (None, ""):
            continue
        for item in value if type(value).__name__ in ("MultiValue", "list", "tuple") else [value]:
            if str(item).strip():
                values.add(str(item).strip())
    return values


# --------------------------------------------------------------------------- images
def load_series_folder(folder: Path) -> Volume:
    """A folder holding exactly one image series (files of any name)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_dicom(p))
    if not files:
        raise DataError(folder, "folder holds no DICOM files")
    series = {read_header(p).get("SeriesInstanceUID") for p in files}
    if len(series) > 1:
        raise DataError(folder, f"holds {len(series)} DICOM series; point at the folder above it, so that each series "
                                "becomes a case of its own (medagent inspect lists them)")
    return load_series(files, folder)


def load_series(files: list[Path], source: Path) -> Volume:
    """One image series: single-frame slices stacked along their normal, or one enhanced multi-frame file."""
    import pydicom

    datasets = []
    for path in files:
        try:
            datasets.append(pydicom.dcmread(str(path)))
        except Exception as exc:
            raise DataError(path, f"not a readable DICOM file ({_first_line(exc)})") from None
    for path, ds in zip(files, datasets):
        if "PixelData" not in ds:
            raise DataError(path, "DICOM file has no pixel data (a report, DICOMDIR or structured document?)")
    if len(datasets) == 1 and int(datasets[0].get("NumberOfFrames", 1) or 1) > 1:
        return _load_multiframe(files[0], datasets[0])
    return _stack_slices(datasets, files, source)


def _stack_slices(datasets, files: list[Path], source: Path) -> Volume:
    first = datasets[0]
    orientation = np.array(getattr(first, "ImageOrientationPatient", [1, 0, 0, 0, 1, 0]), dtype=float)
    row_dir, col_dir = orientation[:3], orientation[3:]
    normal = np.cross(row_dir, col_dir)
    order = sorted(range(len(datasets)), key=lambda i: float(np.dot(normal, np.array(
        getattr(datasets[i], "ImagePositionPatient", [0, 0, i]), dtype=float))))
    datasets, files = [datasets[i] for i in order], [files[i] for i in order]
    first = datasets[0]
    slices = [_pixels(ds, path) for ds, path in zip(datasets, files)]
    shapes = {s.shape for s in slices}
    if len(shapes) != 1:
        raise DataError(source, f"DICOM slices differ in size: {sorted(shapes)}")
    # pydicom gives (rows, cols); nibabel's convention is (x=column index, y=row index, z).
    stack = np.stack([s.T for s in slices], axis=-1)
    # Radiographs (CR/DX) often state only the detector's spacing (ImagerPixelSpacing).
    spacing = getattr(first, "PixelSpacing", None) or getattr(first, "ImagerPixelSpacing", None) or [1.0, 1.0]
    row_spacing, col_spacing = (float(v) for v in spacing)
    origin = np.array(getattr(first, "ImagePositionPatient", [0.0, 0.0, 0.0]), dtype=float)
    if len(datasets) > 1:
        step = (np.array(datasets[-1].ImagePositionPatient, dtype=float) - origin) / (len(datasets) - 1)
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
    if str(getattr(first, "PhotometricInterpretation", "")) == "MONOCHROME1":
        # MONOCHROME1 shows low values white: inverted, so bone is bright as in every other image.
        stack = _invert(stack, first)
        meta["photometric"] = "MONOCHROME1, inverted to MONOCHROME2"
    slope = float(getattr(first, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(first, "RescaleIntercept", 0.0) or 0.0)
    if (slope, intercept) != (1.0, 0.0):
        stack = stack.astype(np.float32) * slope + intercept
        meta["rescaled"] = "Hounsfield units" if modality == "CT" else "rescale slope/intercept applied"
    return Volume(stack, LPS_TO_RAS @ affine_lps, str(source), modality, meta)


def _invert(stack: np.ndarray, ds) -> np.ndarray:
    bits = int(getattr(ds, "BitsStored", 0) or 0)
    if stack.dtype.kind == "u" and bits:
        return ((1 << bits) - 1 - stack.astype(np.int64)).astype(stack.dtype)
    return (stack.max() + stack.min() - stack).astype(stack.dtype)


def _load_multiframe(path: Path, ds) -> Volume:
    """An enhanced MR/CT image: a whole volume in one file, geometry per frame (highdicom reads it)."""
    import highdicom as hd

    try:
        volume = hd.imread(str(path)).get_volume(dtype=np.float32)
    except Exception as exc:
        raise DataError(path, f"multi-frame image is not a regular volume ({_first_line(exc)})") from None
    nifti = volume.to_nibabel()
    modality = str(ds.get("Modality", "")) or None
    meta = {"format": "DICOM multi-frame", "slices": int(ds.NumberOfFrames)}
    if modality == "CT":
        meta["rescaled"] = "Hounsfield units"
    return Volume(np.asanyarray(nifti.dataobj), np.asarray(nifti.affine, dtype=float), str(path), modality, meta)


def _pixels(ds, path: Path) -> np.ndarray:
    try:
        return np.asarray(ds.pixel_array)
    except Exception as exc:
        raise DataError(path, f"DICOM pixel data cannot be decoded ({_first_line(exc)})") from None


# --------------------------------------------------------------------------- labels
def load_seg(path: Path, image: Volume) -> Volume:
    """A DICOM SEG as a label map on ``image``'s voxel grid: value = segment number (0 = background).

    highdicom builds the segmentation's volume and matches it to the image's geometry (frames the SEG
    leaves out are background); the axes are then put in the image's order, so image and label coincide
    voxel for voxel.
    """
    import highdicom as hd
    import nibabel as nib

    try:
        seg = hd.seg.segread(str(path))
        volume = seg.get_volume(combine_segments=True, skip_overlap_checks=True, dtype=np.int16)
        volume = volume.match_geometry(hd.Volume.from_nibabel(nib.Nifti1Image(np.asarray(image.array), image.affine)))
    except Exception as exc:
        raise DataError(path, f"DICOM SEG does not fit the geometry of the series it labels ({_first_line(exc)})") from None
    nifti = volume.to_nibabel()
    label = Volume(np.asanyarray(nifti.dataobj).astype(np.int16), np.asarray(nifti.affine, dtype=float), str(path), "SEG",
                   {"format": "DICOM SEG", "segments": {int(n): seg.get_segment_description(n).segment_label
                                                       for n in seg.get_segment_numbers()}})
    return aligned_to(image, label) or label


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
