"""Write volumes as DICOM: an image series (one file per slice) and a DICOM SEG of a label map made with
highdicom, so a result can go back to a PACS or a viewer that reads only DICOM. The same functions let the
tests build DICOM studies from the phantom.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jupyter_medagent.imaging.dicom import LPS_TO_RAS
from jupyter_medagent.imaging.volume import Volume

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def write_series(volume: Volume, folder, *, modality: str = "MR", patient_name: str = "Anonymous",
                 patient_id: str = "ANON", series_number: int = 1, study_uid: str | None = None,
                 file_names: str = "IM{:05d}") -> list[Path]:
    """One DICOM file per slice of ``volume`` (3D) in ``folder``; returns the paths in slice order.

    Geometry comes from the volume's affine (RAS, as nibabel) turned into DICOM's patient coordinates (LPS).
    ``file_names`` formats the slice index: the default writes extension-less names, as scanners do.
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    array = np.asarray(volume.array)
    if array.ndim != 3:
        raise ValueError(f"write_series needs a 3D volume, not shape {array.shape}")
    lps = LPS_TO_RAS @ volume.affine  # the same flip turns RAS into LPS
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    row_dir, col_dir = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    study_uid, series_uid, frame_uid = study_uid or generate_uid(), generate_uid(), generate_uid()
    sop_class = CT_IMAGE_STORAGE if modality == "CT" else MR_IMAGE_STORAGE
    stored = array.astype(np.int16) if np.issubdtype(array.dtype, np.integer) or modality != "CT" else np.rint(array).astype(np.int16)
    paths = []
    for k in range(array.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / file_names.format(k + 1)
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = patient_name, patient_id, "19700101", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", ""
        ds.ReferringPhysicianName, ds.Manufacturer = "", "jupyter_medagent"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = modality, series_number, k + 1
        ds.ImageOrientationPatient = [float(v) for v in np.concatenate([row_dir, col_dir])]
        ds.ImagePositionPatient = [float(v) for v in (lps @ np.array([0, 0, k, 1.0]))[:3]]
        ds.PixelSpacing = [float(spacing[1]), float(spacing[0])]  # between rows, between columns
        ds.SliceThickness = float(spacing[2])
        ds.Rows, ds.Columns = array.shape[1], array.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        if modality == "CT":
            ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, 0, "HU"
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()  # rows = y, columns = x
        pydicom.dcmwrite(str(path), ds, enforce_file_format=True)
        paths.append(path)
    return paths


def write_seg(label: Volume, series_files: list, path, segment_names: dict[int, str]) -> Path:
    """A DICOM SEG (highdicom) of ``label`` (on the grid of the series in ``series_files``), one segment per
    value in ``segment_names`` ({value: name})."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = sorted((pydicom.dcmread(str(f)) for f in series_files), key=lambda ds: int(ds.InstanceNumber))
    array = np.asarray(label.array)
    frames = np.stack([array[:, :, k].T for k in range(array.shape[2])]).astype(np.uint8)  # (slices, rows, columns)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=number, segment_label=name, segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for number, name in sorted(segment_names.items())]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=100,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="jupyter_medagent",
        manufacturer_model_name="jupyter_medagent", software_versions="0.1", device_serial_number="0")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(str(path))
    return path
