from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.imaging import build_data_card, patient_of
from jupyter_medagent.imaging.layouts import discover


def _write(path, array, spacing=(1.0, 1.0, 1.0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.diag(list(spacing) + [1.0])), str(path))


def test_nnunet_layout_pairs_and_patients(phantom_clean):
    folder, manifest = phantom_clean
    card = build_data_card(folder)
    assert len(card.cases) == 8
    assert all(c.label_path for c in card.cases)
    assert card.patients == sorted(manifest["patients"])
    ed = next(c for c in card.cases if c.case_id == "patient001_ED")
    assert ed.patient_id == "patient001"
    assert ed.label_values == [0, 1, 2, 3]
    assert card.anisotropy > 4  # 1.4 x 1.4 x 8 mm short-axis stacks
    text = card.to_text()
    assert "8 cases from 4 patients" in text and "patient001_ED" in text


def test_suffix_and_per_patient_layouts(tmp_path):
    img = np.random.default_rng(0).random((8, 8, 4)).astype(np.float32)
    lab = (img > 0.5).astype(np.uint8)
    _write(tmp_path / "patient001" / "patient001_frame01.nii.gz", img)
    _write(tmp_path / "patient001" / "patient001_frame01_gt.nii.gz", lab)
    _write(tmp_path / "patient001" / "patient001_frame12.nii.gz", img)
    _write(tmp_path / "brain_seg.nii.gz", lab)
    _write(tmp_path / "brain.nii.gz", img)
    _write(tmp_path / "orphan_mask.nii.gz", lab)
    found = discover(tmp_path)
    by_id = {e.case_id: (Path(e.image.path).name, Path(e.label.path).name if e.label else None) for e in found.entries}
    assert by_id["patient001_frame01"] == ("patient001_frame01.nii.gz", "patient001_frame01_gt.nii.gz")
    assert by_id["patient001_frame12"][1] is None
    assert by_id["brain"] == ("brain.nii.gz", "brain_seg.nii.gz")
    assert found.unpaired_labels == ["orphan_mask.nii.gz"] and found.layout == "folder of images and label maps"
    assert patient_of("patient001_frame12") == "patient001"


def test_non_integer_labels_and_unreadable_files_are_reported(tmp_path):
    _write(tmp_path / "imagesTr" / "a_0000.nii.gz", np.ones((4, 4, 4), np.float32))
    _write(tmp_path / "labelsTr" / "a.nii.gz", np.full((4, 4, 4), 0.5, np.float32))
    (tmp_path / "imagesTr" / "b_0000.nii.gz").write_text("not an image")
    card = build_data_card(tmp_path)
    a = next(c for c in card.cases if c.case_id == "a")
    b = next(c for c in card.cases if c.case_id == "b")
    assert not a.label_integer and "NON-INTEGER" in card.to_text()
    assert b.error and "b_0000.nii.gz" in b.error and "UNREADABLE" in card.to_text()


def test_empty_folder_and_labels_only(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        build_data_card(tmp_path)
    _write(tmp_path / "labelsTr" / "x.nii.gz", np.zeros((2, 2, 2), np.uint8))
    (tmp_path / "imagesTr").mkdir()
    with pytest.raises(DataError, match="only label maps"):
        build_data_card(tmp_path)


def test_class_sub_folders_become_classes(tmp_path):
    for name in ("normal", "lesion"):
        for i in range(2):
            _write(tmp_path / name / f"{name}{i}.nii.gz", np.zeros((4, 4, 4), np.float32))
    card = build_data_card(tmp_path)
    assert card.classes == ["lesion", "normal"]
    assert {c.group for c in card.cases} == {"lesion", "normal"}
    assert "Classes from sub-folders: lesion (2), normal (2)" in card.to_text()
