"""The reading layer for what nibabel and pydicom do not read: ITK formats through SimpleITK (MetaImage, NRRD,
3D Slicer's .seg.nrrd) and pictures through Pillow, with the geometry a careful reader expects: ITK's LPS turned
into RAS, pictures upright after reorientation, MONOCHROME1 radiographs inverted, damage named by file."""

from __future__ import annotations

import io

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.imaging import load_volume, reorient
from jupyter_medagent.imaging.datacard import load_mask
from jupyter_medagent.imaging.formats import seg_nrrd_segments


def _itk(array_xyz, spacing=(0.7, 0.9, 3.0), origin=(12.0, -30.0, 44.0), direction=None):
    image = sitk.GetImageFromArray(np.transpose(array_xyz, (2, 1, 0)))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image


@pytest.mark.parametrize("suffix", [".mha", ".mhd", ".nrrd"])
def test_itk_files_read_with_the_same_world_geometry_as_nifti(tmp_path, suffix):
    """The same image written by ITK as NIfTI (read by nibabel) and as MetaImage/NRRD: voxels and RAS affine agree."""
    array = np.random.default_rng(0).normal(size=(9, 7, 5)).astype(np.float32)
    oblique = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    image = _itk(array, direction=oblique)
    sitk.WriteImage(image, str(tmp_path / "ref.nii.gz"))
    sitk.WriteImage(image, str(tmp_path / f"scan{suffix}"), useCompression=suffix == ".nrrd")
    reference = nib.load(str(tmp_path / "ref.nii.gz"))
    volume = load_volume(tmp_path / f"scan{suffix}")
    np.testing.assert_allclose(volume.affine, reference.affine, atol=1e-4)
    np.testing.assert_array_equal(volume.array, np.asanyarray(reference.dataobj))
    assert volume.spacing == pytest.approx((0.7, 0.9, 3.0))
    # ITK's origin is in LPS: x and y change sign in RAS.
    np.testing.assert_allclose(volume.affine[:3, 3], [-12.0, 30.0, 44.0])
    if suffix == ".mhd":
        assert (tmp_path / "scan.raw").exists()


def test_seg_nrrd_segment_names_and_values_come_from_the_header(tmp_path):
    label = np.zeros((6, 6, 4), np.uint8)
    label[1:3, 1:3, 1] = 1
    label[4:, 4:, 2] = 3
    image = _itk(label)
    for i, (name, value) in enumerate((("liver", 1), ("tumor", 3))):
        image.SetMetaData(f"Segment{i}_Name", name)
        image.SetMetaData(f"Segment{i}_LabelValue", str(value))
    path = tmp_path / "Segmentation.seg.nrrd"
    sitk.WriteImage(image, str(path), useCompression=True)
    assert seg_nrrd_segments(path) == {1: "liver", 3: "tumor"}
    volume = load_volume(path)
    assert volume.meta["segments"] == {1: "liver", 3: "tumor"}
    assert sorted(np.unique(volume.array)) == [0, 1, 3]


def test_a_truncated_mha_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.mha"
    sitk.WriteImage(_itk(np.ones((32, 32, 16), np.float32)), str(path))
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(DataError, match="broken.mha"):
        load_volume(path)


def test_pictures_stay_upright_and_keep_their_bit_depth(tmp_path):
    pixels = np.zeros((4, 6), np.uint16)  # 4 rows, 6 columns
    pixels[0, 5] = 60000  # top right
    Image.fromarray(pixels).save(tmp_path / "xray.tif")
    volume = load_volume(tmp_path / "xray.tif")
    assert volume.shape == (6, 4, 1) and volume.array.dtype == np.uint16
    assert volume.array.max() == 60000  # 16 bits kept, not squeezed to 8
    # After reorientation to RAS, the renderer shows plane.T[::-1]: the picture as it was saved.
    shown = reorient(volume).array[:, :, 0].T[::-1]
    np.testing.assert_array_equal(shown, pixels)


def test_rgb_palette_and_gif_pictures(tmp_path):
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    assert load_volume(tmp_path / "photo.png").shape == (7, 5, 1, 3)
    grey_palette = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("P")
    grey_palette.save(tmp_path / "mask.gif")  # DRIVE ships its masks as GIF
    gif = load_volume(tmp_path / "mask.gif")
    assert gif.shape == (2, 2, 1) and sorted(np.unique(gif.array)) == [0, 255]
    Image.fromarray(rgb).save(tmp_path / "photo.bmp")
    assert load_volume(tmp_path / "photo.bmp").shape == (7, 5, 1, 3)


def test_a_truncated_picture_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="broken.jpg"):
        load_volume(path)


def test_masks_0_255_lossy_and_merged(tmp_path):
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 8:20] = 255
    Image.fromarray(mask).save(tmp_path / "a_mask.png")
    Image.fromarray(mask).save(tmp_path / "a_mask.jpg", quality=30)
    second = np.zeros_like(mask)
    second[24:30, 24:30] = 255
    Image.fromarray(second).save(tmp_path / "a_mask_1.png")
    clean = load_mask([str(tmp_path / "a_mask.png")])
    assert clean.meta["mask_encoding"] == "0/255" and sorted(np.unique(clean.array)) == [0, 1]
    lossy = load_mask([str(tmp_path / "a_mask.jpg")])
    assert "grey levels" in lossy.meta["mask_encoding"] and sorted(np.unique(lossy.array)) == [0, 1]
    assert abs(int(lossy.array.sum()) - 144) <= 12  # the threshold recovers the square
    merged = load_mask([str(tmp_path / "a_mask.png"), str(tmp_path / "a_mask_1.png")])
    assert int(merged.array.sum()) == 144 + 36 and merged.meta["merged"] == 2


def test_monochrome1_radiograph_is_inverted_and_imager_pixel_spacing_is_used(tmp_path):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # DX
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(tmp_path / "dx.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PhotometricInterpretation = "DX", "MONOCHROME1"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = 4, 5, 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ImagerPixelSpacing = [0.15, 0.14]
    pixels = np.full((4, 5), 4000, np.uint16)
    pixels[1, 2] = 100  # bone: white in MONOCHROME1 means a low value
    ds.PixelData = pixels.tobytes()
    ds.save_as(tmp_path / "dx.dcm", enforce_file_format=True)
    volume = load_volume(tmp_path / "dx.dcm")
    assert volume.meta["photometric"].startswith("MONOCHROME1")
    assert volume.array[2, 1, 0] == 4095 - 100 and volume.array[0, 0, 0] == 4095 - 4000
    assert volume.spacing[:2] == pytest.approx((0.14, 0.15))  # columns, rows


def test_an_rgb_picture_and_its_mask_render_in_colour_as_one_panel(tmp_path):
    from jupyter_medagent.imaging import render_montage

    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 2] = 220  # blue everywhere
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    Image.fromarray(mask).save(tmp_path / "photo_mask.png")
    montage = render_montage(reorient(load_volume(tmp_path / "photo.png")), reorient(load_mask([str(tmp_path / "photo_mask.png")])))
    pixels = np.asarray(Image.open(io.BytesIO(montage._repr_png_())).convert("RGB")).astype(int)
    blue = (pixels[..., 2] > 180) & (pixels[..., 0] < 60) & (pixels[..., 1] < 60)
    assert blue.sum() > 0.3 * pixels.shape[0] * pixels.shape[1]  # one colour panel fills most of the montage
