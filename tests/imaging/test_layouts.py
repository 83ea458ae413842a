"""Data sets in the layouts people download, built from the phantom: each recognised by name, patients counted
right, cines attached to their patients, damaged layouts reported as findings that name the file."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from jupyter_medagent.imaging import build_data_card, load_pair, patient_of
from jupyter_medagent.synth.phantom import simulate_patient
from jupyter_medagent.synth.replicas import synth_cardiac
from jupyter_medagent.imaging.volume import Volume
from jupyter_medagent.judge.quantitative import check_dataset, dataset_convention


def medagent(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    """The same 4 labelled + 2 unlabelled patients in the ACDC, M&Ms and MSD layouts (8-frame cines)."""
    root = tmp_path_factory.mktemp("replicas")
    return {layout: (root / layout, synth_cardiac(root / layout, cases=4, seed=6, layout=layout, test_cases=2, frames=8))
            for layout in ("acdc", "mnms", "msd")}


def test_acdc_cines_belong_to_their_patients_and_info_cfg_is_read(replicas):
    folder, manifest = replicas["acdc"]
    card = build_data_card(folder)
    assert card.layout == "ACDC" and len(card.patients) == 6  # not 12: the 4D cines are not patients
    assert len(card.cases) == 12 and sum(c.label_path is not None for c in card.cases) == 8
    assert {c["patient"] for c in card.cines} == set(manifest["patients"]) and all(c["frames"] == 8 for c in card.cines)
    truth = manifest["patients"]["patient001"]
    cine = next(c for c in card.cines if c["patient"] == "patient001")
    assert (cine["ed"], cine["es"]) == (truth["ed_frame"], truth["es_frame"])
    assert card.patients_metadata["patient001"]["Height"] == pytest.approx(truth["height_cm"])
    ed = next(c for c in card.cases if c.case_id == "patient001_ED")
    assert ed.phase == "ED" and ed.split == "training" and ed.label_path.endswith("_frame01_gt.nii.gz")
    assert {c.split for c in card.cases if c.patient_id == "patient005"} == {"testing"}
    assert dataset_convention(card) == "acdc"
    assert "Cines (4D, 8 frames) attached to 6 patients" in card.to_text()


def test_mnms_frames_come_from_the_csv_and_the_convention_is_mnms(replicas):
    folder, manifest = replicas["mnms"]
    card = build_data_card(folder)
    assert card.layout == "M&Ms" and len(card.patients) == 6 and len(card.cases) == 12
    code = next(p for p, v in manifest["patients"].items() if v["split"] == "training")
    es = next(c for c in card.cases if c.case_id == f"{code}_ES")
    assert es.image_frame == manifest["patients"][code]["es_frame"] and es.label_frame == es.image_frame
    assert es.shape[:3] == es.label_shape[:3] and len(es.shape) == 3  # one frame, not the whole cine
    assert dataset_convention(card) == "mnms"
    assert check_dataset(card) == []  # consistent M&Ms labels are not a convention error


def test_mnms_csv_without_a_row_falls_back_to_the_labelled_frames(replicas, tmp_path):
    folder, manifest = replicas["mnms"]
    copy = shutil.copytree(folder, tmp_path / "mnms")
    table = next(copy.glob("*.csv"))
    rows = list(csv.DictReader(open(table)))
    code = rows[0]["External code"]
    rows[1]["ED"], rows[1]["ES"] = "3", "5"  # wrong frames for the second patient
    wrong = rows[1]["External code"]
    with open(table, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[1:])
    card = build_data_card(copy)
    messages = {f.case: f.message for f in card.layout_findings}
    assert "has no row for " + code in messages[code]
    assert "labels frames" in messages[wrong]
    for patient in (code, wrong):
        ed = next(c for c in card.cases if c.case_id == f"{patient}_ED")
        assert ed.image_frame == manifest["patients"][patient]["ed_frame"]


def test_msd_names_glue_the_phase_and_dataset_json_names_the_labels(replicas):
    folder, _ = replicas["msd"]
    card = build_data_card(folder)
    assert card.layout == "Medical Segmentation Decathlon" and len(card.patients) == 6
    assert patient_of("heart_001ED") == patient_of("heart_001ES") == "heart_001"
    assert card.modality == "MR" and card.label_names[3] == "left ventricle"
    assert sum(c.split == "testing" for c in card.cases) == 4


def test_nnunet_v2_channels_and_multichannel_decathlon_images(tmp_path):
    v2 = tmp_path / "Dataset001_Brain"
    for case in ("case1", "case2"):
        for channel in (0, 1):
            _nifti(v2 / "imagesTr" / f"{case}_{channel:04d}.nii.gz", np.random.default_rng(channel).random((8, 8, 8)))
        _nifti(v2 / "labelsTr" / f"{case}.nii.gz", np.ones((8, 8, 8), np.uint8))
    (v2 / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T1", "1": "FLAIR"}, "labels": {"background": 0,
                                                 "lesion": 1}, "numTraining": 2, "file_ending": ".nii.gz"}))
    card = build_data_card(v2)
    assert card.layout == "nnU-Net v2 raw data set" and [c.case_id for c in card.cases] == ["case1", "case2"]
    assert all(c.channels == 2 for c in card.cases) and card.label_names == {0: "background", 1: "lesion"}
    msd = tmp_path / "Task01_BrainTumour"
    _nifti(msd / "imagesTr" / "BRATS_001.nii.gz", np.random.default_rng(0).random((8, 8, 8, 4)).astype(np.float32))
    _nifti(msd / "labelsTr" / "BRATS_001.nii.gz", np.ones((8, 8, 8), np.uint8))
    (msd / "dataset.json").write_text(json.dumps({"modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
                                                  "labels": {"0": "background", "1": "edema"}}))
    card = build_data_card(msd)
    assert card.cases[0].channels == 4 and not card.cines and card.modality == "MR"  # channels, not a cine


def test_bids_subjects_are_patients_and_derivatives_are_labels(tmp_path):
    image = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    for sub in ("01", "02"):
        _nifti(tmp_path / f"sub-{sub}" / "ses-1" / "anat" / f"sub-{sub}_ses-1_T1w.nii.gz", image)
    _nifti(tmp_path / "derivatives" / "masks" / "sub-01" / "ses-1" / "anat" / "sub-01_ses-1_desc-brain_mask.nii.gz",
           (image > 0.5).astype(np.uint8))
    (tmp_path / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    card = build_data_card(tmp_path)
    assert card.layout == "BIDS" and card.patients == ["sub-01", "sub-02"]
    labelled = {c.case_id: c.label_path for c in card.cases}
    assert labelled["sub-01_ses-1_T1w"].endswith("sub-01_ses-1_desc-brain_mask.nii.gz")
    assert labelled["sub-02_ses-1_T1w"] is None


def test_plain_folder_patient_ids_survive_phase_suffixes(tmp_path):
    image = np.random.default_rng(0).random((8, 8, 4)).astype(np.float32)
    for name in ("heart_000ED", "heart_000ES", "patient7_ED", "patient7_ES", "case3_frame01"):
        _nifti(tmp_path / f"{name}.nii.gz", image)
        _nifti(tmp_path / f"{name}_gt.nii.gz", (image > 0.5).astype(np.uint8))
    card = build_data_card(tmp_path)
    assert card.patients == ["case3", "heart_000", "patient7"]
    assert {c.phase for c in card.cases if c.patient_id == "heart_000"} == {"ED", "ES"}
    assert patient_of("SPEED") == "SPEED"  # a bare ED needs a number before it


# ---------------------------------------------------------------------------------------------- DICOM
PYDICOM_TREE = Path(__import__("pydicom").__file__).parent / "data" / "test_files" / "dicomdirtests"


def test_pydicom_dicomdir_tree_is_listed_by_patient_study_series_and_every_image_series_reads():
    result = medagent("inspect", PYDICOM_TREE, "--json")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    card = json.loads(result.stdout)["card"]
    assert card["layout"] == "DICOM" and card["n_patients"] == 2
    assert {s["modality"] for s in card["series"]} == {"CR", "CT", "MR"} and len(card["series"]) == 13
    assert all(c["error"] is None for c in card["cases"])  # every image series is readable
    assert any("DICOMDIR index" in s for s in card["skipped"])
    assert any("without pixel data" in s for s in card["skipped"])
    text = medagent("inspect", PYDICOM_TREE).stdout
    assert "patient02 / study4:" in text and "series700: MR, 7 slice(s)" in text
    assert "98890234" not in text and "77654033" not in text  # patient IDs never shown


def _study(tmp_path, *, with_seg=True, drop_slice=None):
    from jupyter_medagent.imaging.dicom_export import write_seg, write_series

    patient = simulate_patient(0, 3)
    image, label = patient.frames[0]
    folder = tmp_path / "Doe_Jane" / "STUDY1"
    files = write_series(Volume(image, patient.affine), folder / "SERIES1", patient_name="Doe^Jane", patient_id="MRN998877")
    write_series(Volume(image[:, :, :4], patient.affine), folder / "SERIES1", series_number=2, file_names="LOC{:03d}")
    if with_seg:
        write_seg(Volume(label, patient.affine), files, folder / "SEG" / "seg.dcm",
                  {1: "right ventricle", 2: "myocardium", 3: "left ventricle"})
    if drop_slice is not None:
        files[drop_slice].unlink()
    return image, label, patient.affine


def test_a_dicom_study_with_seg_loads_as_the_pair_it_was_written_from(tmp_path):
    image, label, affine = _study(tmp_path)
    card = build_data_card(tmp_path)
    assert card.layout == "DICOM" and len(card.cases) == 2  # two series in one folder, told apart by UID
    case = next(c for c in card.cases if c.label_path)
    loaded_image, loaded_label = load_pair(case)
    assert np.array_equal(loaded_image.array, image) and np.allclose(loaded_image.affine, affine)
    assert np.array_equal(loaded_label.array, label) and np.allclose(loaded_label.affine, affine)
    assert check_dataset(card) == [] and dataset_convention(card) == "acdc"
    text = card.to_text()
    assert "Doe" not in text and "Jane" not in text and "MRN998877" not in text
    assert {"Doe^Jane", "MRN998877"} <= card.identifiers and "identifiers" not in json.dumps(card.to_dict())


def test_a_seg_whose_series_is_absent_and_a_truncated_series_are_findings(tmp_path):
    _study(tmp_path, drop_slice=5)
    result = medagent("inspect", tmp_path, "--json")
    findings = json.loads(result.stdout)["findings"]
    assert any(f["kind"] == "damaged_layout" and "gap" in f["message"] for f in findings)
    for path in (tmp_path / "Doe_Jane" / "STUDY1" / "SERIES1").iterdir():
        if path.name.startswith("IM"):
            path.unlink()
    findings = json.loads(medagent("inspect", tmp_path, "--json").stdout)["findings"]
    assert any("seg.dcm is a DICOM SEG for a series that is not in the folder" in f["message"] for f in findings)


# ---------------------------------------------------------------------------------------------- geometry
def test_a_label_stored_in_another_orientation_of_the_same_voxels_is_aligned_not_an_error(tmp_path):
    patient = simulate_patient(0, 2)
    image, label = patient.frames[0]
    _nifti(tmp_path / "image.nii.gz", image, patient.affine)
    # The exporter wrote the label with its first two axes swapped and flipped, and said so in the header.
    ornt = nib.orientations.axcodes2ornt(("P", "L", "S"))
    transform = nib.orientations.ornt_transform(nib.orientations.io_orientation(patient.affine), ornt)
    stored = nib.orientations.apply_orientation(label, transform)
    affine = patient.affine @ nib.orientations.inv_ornt_aff(transform, label.shape)
    _nifti(tmp_path / "label.nii.gz", stored, affine)
    result = json.loads(medagent("judge", "--image", tmp_path / "image.nii.gz", "--label", tmp_path / "label.nii.gz",
                                 "--json").stdout)
    assert result["verdict"] == "ok" and [f["kind"] for f in result["findings"]] == ["aligned_by_reorientation"]
    shifted = affine.copy()
    shifted[:3, 3] += 20.0  # the same voxels somewhere else: a real misalignment
    _nifti(tmp_path / "label.nii.gz", stored, shifted)
    result = json.loads(medagent("judge", "--image", tmp_path / "image.nii.gz", "--label", tmp_path / "label.nii.gz",
                                 "--json").stdout)
    assert result["verdict"] == "flag" and result["findings"][0]["kind"] == "geometry_mismatch"


# ---------------------------------------------------------------------------------------------- damaged layouts
def _nifti(path, array, affine=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array), np.eye(4) if affine is None else affine), str(path))
    return path


def _damaged(tmp_path, kind, replicas):
    """A copy of a replica, broken the way downloads and exports break; returns (folder, text expected)."""
    acdc, _ = replicas["acdc"]
    if kind == "missing frame, cine present":
        folder = shutil.copytree(acdc, tmp_path / kind)
        next(folder.glob("training/patient001/patient001_frame01.nii.gz")).unlink()
        return folder, "the frame is taken from patient001_4d.nii.gz"
    if kind == "missing frame, no cine":
        folder = shutil.copytree(acdc, tmp_path / kind)
        next(folder.glob("training/patient002/patient002_frame01.nii.gz")).unlink()
        next(folder.glob("training/patient002/patient002_4d.nii.gz")).unlink()
        return folder, "names ED frame 1 but patient002_frame01.nii.gz is missing"
    if kind == "Info.cfg without ES":
        folder = shutil.copytree(acdc, tmp_path / kind)
        info = folder / "training" / "patient003" / "Info.cfg"
        info.write_text("\n".join(line for line in info.read_text().splitlines() if not line.startswith("ES")))
        return folder, "Info.cfg does not say which frame is ES"
    if kind == "dataset.json broken":
        folder = shutil.copytree(replicas["msd"][0], tmp_path / kind)
        (folder / "dataset.json").write_text("{not json")
        return folder, "dataset.json is not valid JSON"
    if kind == "header bomb":
        folder = tmp_path / kind
        _nifti(folder / "good.nii.gz", np.zeros((8, 8, 8), np.float32))
        header = nib.Nifti1Header()
        header.set_data_shape((1500, 1500, 1500))
        header.set_data_dtype(np.float32)
        (folder / "bomb.nii.gz").write_bytes(gzip.compress(header.binaryblock + b"\0" * 4)[:64])
        return folder, "cannot hold them"
    if kind == "NaN image":
        folder = tmp_path / kind
        _nifti(folder / "nan.nii.gz", np.full((8, 8, 8), np.nan, np.float32))
        _nifti(folder / "nan_gt.nii.gz", np.ones((8, 8, 8), np.uint8))
        _nifti(folder / "good.nii.gz", np.ones((8, 8, 8), np.float32))
        return folder, "voxels are NaN or infinite"
    if kind == "4D image, 3D label":
        folder = tmp_path / kind
        _nifti(folder / "cine.nii.gz", np.zeros((8, 8, 4, 12), np.float32))
        _nifti(folder / "cine_gt.nii.gz", np.ones((6, 6, 4), np.uint8))
        return folder, "which frame it labels cannot be told"
    raise AssertionError(kind)


DAMAGED = ["missing frame, cine present", "missing frame, no cine", "Info.cfg without ES", "dataset.json broken",
           "header bomb", "NaN image", "4D image, 3D label"]


@pytest.mark.parametrize("kind", DAMAGED)
def test_damaged_layouts_are_named_findings_never_tracebacks(tmp_path, kind, replicas):
    folder, expected = _damaged(tmp_path, kind, replicas)
    result = medagent("inspect", folder, "--json")
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    if result.returncode == 2:  # nothing usable at all: one line naming the folder
        assert result.stderr.count("\n") == 1 and expected in result.stderr
        return
    assert result.returncode == 0
    report = json.loads(result.stdout)
    texts = [f["message"] for f in report["findings"]] + [c["error"] or "" for c in report["card"]["cases"]]
    assert any(expected in t for t in texts), texts


def test_the_header_bomb_costs_no_memory(tmp_path, replicas):
    folder, _ = _damaged(tmp_path, "header bomb", replicas)
    # A wrapper process whose only child is `medagent inspect`, so its children's peak RSS is inspect's own.
    wrapper = ("import resource, subprocess, sys; r = subprocess.run([sys.executable, '-m', 'jupyter_medagent.cli', "
               "'inspect', sys.argv[1]], capture_output=True, text=True); "
               "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, 'bomb.nii.gz' in r.stdout)")
    code, peak_kb, named = subprocess.run([sys.executable, "-c", wrapper, str(folder)], capture_output=True,
                                          text=True).stdout.split()
    assert code == "0" and named == "True"
    assert int(peak_kb) / 1024 < 500, f"inspect peaked at {int(peak_kb) / 1024:.0f} MB"
