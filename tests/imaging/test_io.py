from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.imaging import Volume, load_volume, reorient, save_volume


def test_nifti_spacing_and_orientation_from_real_files(nibabel_data):
    anat = load_volume(nibabel_data / "anatomical.nii")
    assert anat.shape == (33, 41, 25)
    assert anat.spacing == pytest.approx((2.0, 2.0, 2.0))
    assert anat.orientation == ("L", "A", "S")
    moved = load_volume(nibabel_data / "reoriented_anat_moved.nii")
    assert moved.spacing == pytest.approx((4.0, 4.0, 4.0))
    assert moved.orientation == ("R", "A", "S")


def test_ct_dicom_is_rescaled_to_hounsfield_units():
    ct = load_volume(get_testdata_file("CT_small.dcm"))
    assert ct.modality == "CT"
    assert ct.meta["rescaled"] == "Hounsfield units"
    assert ct.spacing[:2] == pytest.approx((0.661468, 0.661468))
    raw = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    expected = raw.pixel_array.astype(float) * float(raw.RescaleSlope) + float(raw.RescaleIntercept)
    assert np.allclose(ct.array[..., 0].T, expected)
    assert -1100 < ct.array.min() < -500  # air/lung in HU, not raw stored values
    # DICOM's LPS header becomes nibabel's RAS affine: the patient's left is +x in LPS, -x in RAS.
    assert ct.orientation == ("L", "P", "S")


def test_identifying_dicom_tags_never_reach_the_volume():
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    vol = load_volume(get_testdata_file("MR_small.dcm"))
    assert vol.modality == "MR"
    flat = repr(vol.meta)
    for tag in ("PatientName", "PatientID", "PatientBirthDate"):
        value = str(getattr(ds, tag, "") or "")
        assert tag not in flat
        if value:
            assert value not in flat


def test_dicom_series_folder_is_sorted_by_position(tmp_path):
    source = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    rng = np.random.default_rng(0)
    planes = [rng.integers(0, 1000, size=source.pixel_array.shape).astype(source.pixel_array.dtype) for _ in range(4)]
    for k in (2, 0, 3, 1):  # written out of order
        ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
        ds.PixelData = planes[k].tobytes()
        ds.ImagePositionPatient = [0.0, 0.0, 3.0 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.save_as(tmp_path / f"slice_{k * 7 % 5}.dcm")
    vol = load_volume(tmp_path)
    assert vol.shape[2] == 4
    assert vol.spacing[2] == pytest.approx(3.0)
    for k in range(4):
        assert np.array_equal(vol.array[..., k].T, planes[k])


def test_save_and_reorient_round_trip(tmp_path, nibabel_data):
    vol = load_volume(nibabel_data / "anatomical.nii")
    ras = reorient(vol)
    assert ras.orientation == ("R", "A", "S")
    # Same world position for the same voxel value: reorientation only relabels axes.
    assert np.allclose(ras.affine @ [0, 0, 0, 1], vol.affine @ [vol.shape[0] - 1, 0, 0, 1])
    path = save_volume(ras, tmp_path / "ras.nii.gz")
    again = load_volume(path)
    assert np.array_equal(again.array, ras.array)
    assert np.allclose(again.affine, ras.affine)


def test_four_d_rejected_where_three_d_expected(nibabel_data):
    with pytest.raises(DataError, match=r"example4d\.nii\.gz.*4D.*pick one frame"):
        load_volume(nibabel_data / "example4d.nii.gz", expect_ndim=3)


# A real compressed NIfTI cut in half, as an interrupted copy leaves it.
TRUNCATED_NIFTI = (Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz").read_bytes()[:20000]


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("patient notes, not an image"), "not gzip"),
        (lambda p: p.write_bytes(TRUNCATED_NIFTI), "corrupt or truncated"),
    ],
)
def test_bad_nifti_files_name_the_file(tmp_path, make, problem):
    path = tmp_path / "scan.nii.gz"
    make(path)
    with pytest.raises(DataError, match=problem) as info:
        load_volume(path)
    assert str(path) in str(info.value)


def test_dicom_without_pixel_data(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "report.dcm")
    with pytest.raises(DataError, match="no pixel data"):
        load_volume(tmp_path / "report.dcm")


def test_volume_from_array_keeps_geometry():
    vol = Volume(np.zeros((4, 5, 6)), np.diag([1.5, 1.5, 8.0, 1.0]))
    assert vol.spacing == (1.5, 1.5, 8.0)
    assert vol.orientation == ("R", "A", "S")
    nib.Nifti1Image(vol.array, vol.affine)  # a Volume maps onto NIfTI directly
