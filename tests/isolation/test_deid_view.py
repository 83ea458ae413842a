"""The de-identified view hides PHI that is not in a DICOM value: folder names, archives, free text (R3)."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from jupyter_medagent.isolation.deid import LEFT_OUT_SUFFIX, deidentified_view


def _dicom(name: str, patient_id: str) -> Dataset:
    """As the red team's make script writes them: PHI in the names and in free text."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID, ds.Modality, ds.AccessionNumber = name, patient_id, "MR", "ACC99817"
    ds.StudyDescription = "follow-up of Jane Canaryseven"
    ds.SeriesDescription = "cine SA Canaryseven"
    ds.ImageComments = "Mrs Canary, see CANARYID7"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = generate_uid(), generate_uid(), 1
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = np.zeros((8, 8), np.uint16).tobytes()
    return ds


@pytest.fixture
def data(tmp_path, monkeypatch):
    import nibabel as nib

    monkeypatch.setenv("MEDAGENT_DEID_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    (data / "CANARYID7").mkdir(parents=True)
    (data / "ACC99817_Canary").mkdir()
    _dicom("CANARY^SEVEN", "CANARYID7").save_as(data / "CANARYID7" / "a.dcm", enforce_file_format=True)
    _dicom("CANARY^SEVEN", "CANARYID7").save_as(data / "ACC99817_Canary" / "b.dcm", enforce_file_format=True)
    member = io.BytesIO()
    _dicom("CANARY^EIGHT", "CANARYID8").save_as(member, enforce_file_format=True)
    with zipfile.ZipFile(data / "export.zip", "w") as archive:
        archive.writestr("IM0001", member.getvalue())
    with tarfile.open(data / "export.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("IM0002")
        info.size = len(member.getvalue())
        archive.addfile(info, io.BytesIO(member.getvalue()))
    nib.save(nib.Nifti1Image(np.ones((4, 4, 2), np.float32), np.eye(4)), str(data / "vol.nii.gz"))
    return data


def test_names_archives_and_free_text_in_the_view_hold_no_phi(data):
    view = deidentified_view(data)
    root = Path(view.root)
    shown = sorted(os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files)
    for rel in shown:
        assert "canary" not in rel.lower() and "acc99817" not in rel.lower(), shown
        path = root / rel
        if path.is_file():
            content = path.read_bytes().lower()
            assert b"canary" not in content and b"acc99817" not in content and b"jane" not in content, rel
    assert "vol.nii.gz" in shown  # a NIfTI (gzip, not an archive) is shown as it is
    assert sorted(view.left_out) == ["export.tar.gz", "export.zip"]
    note = (root / ("export.zip" + LEFT_OUT_SUFFIX)).read_text()
    assert "export.zip is an archive" in note and "Unpack it" in note
    dicoms = [pydicom.dcmread(root / rel) for rel in shown if rel.endswith(".dcm")]
    assert len(dicoms) == 2 and view.dicom_files == 2
    for ds in dicoms:
        assert "StudyDescription" not in ds and "ImageComments" not in ds
        assert ds.SeriesDescription.startswith("cine SA")  # still tells the series' kind
    # The same pseudonym in every build: a notebook's paths into the view keep working.
    again = deidentified_view(data)
    assert sorted(os.path.relpath(os.path.join(d, n), again.root)
                  for d, dirs, files in os.walk(again.root) for n in dirs + files) == shown
