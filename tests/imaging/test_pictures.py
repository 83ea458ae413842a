"""2D data sets as they are downloaded (chest X-ray class folders with splits, Kvasir-SEG, ISIC, BUSI, label
tables, ITK volumes and 3D Slicer exports), recognised by the card; and the 2D checks an expert runs, found
on many small planted phantoms without false alarms."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from jupyter_medagent.imaging import build_data_card, load_pair
from jupyter_medagent.synth.phantom2d import synth_itk, synth_seg2d, synth_xray
from jupyter_medagent.judge.quantitative import check_dataset

# The planted pitfall -> the finding kind that reports it.
REPORTED_AS = {"mask_size": "geometry_mismatch"}


def test_chest_xray_class_folders_keep_their_splits_and_patients(tmp_path):
    manifest = synth_xray(tmp_path / "chest_xray", per_class=6, seed=1)
    card = build_data_card(tmp_path / "chest_xray")
    assert "class folders" in card.layout and card.dims == 2
    assert card.classes == ["NORMAL", "PNEUMONIA"]
    assert card.splits == {"testing": 10, "training": 12, "validation": 10}
    truth = {c["case"]: (c["split"], c["class"]) for c in manifest["cases"]}
    names = {"train": "training", "val": "validation", "test": "testing"}
    assert {c.case_id: (c.split, c.group) for c in card.cases} == {k: (names[s], g) for k, (s, g) in truth.items()}
    assert {c.patient_id for c in card.cases if c.case_id.startswith("person")} == \
        {c.case_id.split("_")[0] for c in card.cases if c.case_id.startswith("person")}
    assert card.to_dict()["dims"] == 2


@pytest.mark.parametrize("style", ["kvasir", "isic", "busi"])
def test_image_and_mask_folders_are_paired_by_stem(tmp_path, style):
    manifest = synth_seg2d(tmp_path / style, cases=8, seed=2, style=style)
    card = build_data_card(tmp_path / style)
    assert "images and masks" in card.layout and len(card.cases) == 8
    assert all(c.label_path for c in card.cases) and card.unpaired_labels == []
    assert card.label_values == [0, 1]  # 0/255 masks read as 0/1
    for case, truth in zip(sorted(card.cases, key=lambda c: c.image_path), sorted(manifest["cases"], key=lambda c: c["image"])):
        label = load_pair(case)[1]
        assert abs(int(label.array.sum()) - truth["lesion_pixels"]) <= 0.05 * truth["lesion_pixels"] + 2
    if style == "busi":  # BUSI's second masks (_mask_1) are merged into their image's label
        assert any(len(c.mask_files) == 2 for c in card.cases)
        assert {c.group for c in card.cases} == {"benign", "malignant"}


def _pictures(folder, names, rgb=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        shape = (16, 16, 3) if rgb else (16, 16)
        Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(folder / name)


def test_nih_table_gives_multi_labels_and_patients(tmp_path):
    root = tmp_path / "nih"
    _pictures(root / "images", ["00000001_000.png", "00000001_001.png", "00000002_000.png", "00000003_000.png"])
    with open(root / "Data_Entry_2017.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Image Index", "Finding Labels", "Follow-up #", "Patient ID"])
        writer.writerows([["00000001_000.png", "Cardiomegaly|Effusion", 0, 1], ["00000001_001.png", "No Finding", 1, 1],
                          ["00000002_000.png", "Effusion", 0, 2]])
    card = build_data_card(root)
    assert card.multi_labels == ["Cardiomegaly", "Effusion"]
    labels = {c.case_id: c.labels for c in card.cases}
    assert labels["00000001_000"] == ["Cardiomegaly", "Effusion"] and labels["00000001_001"] == []
    assert {c.case_id: c.patient_id for c in card.cases}["00000001_001"] == "1"
    assert {c.case_id: c.patient_id for c in card.cases}["00000003_000"] == "00000003"  # no row: from the name
    missing = [f for f in card.layout_findings if "00000003_000.png" in f.message]
    assert missing and "no row" in missing[0].message
    assert "multi-label" in card.layout


def test_isic_one_hot_table_and_split_column(tmp_path):
    root = tmp_path / "isic"
    names = [f"ISIC_{i:07d}" for i in range(6)]
    _pictures(root / "ISIC2018_Task3_Training_Input", [n + ".jpg" for n in names], rgb=True)
    (root / "GroundTruth").mkdir()
    with open(root / "GroundTruth" / "ISIC2018_Task3_Training_GroundTruth.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "MEL", "NV", "BCC", "split"])
        for i, name in enumerate(names):
            writer.writerow([name, 1.0 if i % 3 == 0 else 0.0, 1.0 if i % 3 == 1 else 0.0, 1.0 if i % 3 == 2 else 0.0,
                             "test" if i >= 4 else "train"])
    card = build_data_card(root)
    assert card.classes == ["BCC", "MEL", "NV"]
    assert {c.case_id: c.group for c in card.cases}["ISIC_0000004"] == "NV"
    assert card.splits == {"testing": 2, "training": 4}
    assert card.channels == {3: 6}


@pytest.mark.parametrize("style", ["mha", "mhd", "slicer"])
def test_itk_layouts(tmp_path, style):
    manifest = synth_itk(tmp_path / style, cases=3, size=32, style=style)
    card = build_data_card(tmp_path / style)
    assert len(card.cases) == 3 and len(card.patients) == 3 and not card.classes
    assert all(c.error is None and c.label_path for c in card.cases)
    assert card.median_spacing == pytest.approx((0.8, 0.8, 2.5))
    assert [c.case_id for c in card.cases] == [c["case"] for c in manifest["cases"]]
    if style == "slicer":  # one case per patient folder, named after it, the structure named by the .seg.nrrd
        assert "3D Slicer" in card.layout and card.label_names == {1: "tumor"}
    for case, truth in zip(card.cases, manifest["cases"]):
        assert int(load_pair(case)[1].array.sum()) == truth["foreground_voxels"]


def test_damaged_2d_cases_are_findings_naming_the_file(tmp_path):
    synth_seg2d(tmp_path / "isic", cases=8, seed=3, style="isic", pitfalls="mask_size,unreadable")
    findings = check_dataset(build_data_card(tmp_path / "isic"))
    unreadable = [f for f in findings if f.kind == "unreadable"]
    size = [f for f in findings if f.kind == "geometry_mismatch"]
    assert len(unreadable) == 1 and ".jpg" in unreadable[0].message and "ISIC_" in unreadable[0].message
    assert len(size) == 1 and "_segmentation.png" in size[0].message and "80x64" in size[0].message


def _score(findings, planted, kinds):
    """(found, planted, false alarms) for findings of ``kinds``."""
    # Which of two identical pictures is the copy cannot be told without a split: either name counts.
    truth = {(frozenset((p["case"], p["duplicate_of"])) if p["kind"] == "leakage" else p["case"],
              REPORTED_AS.get(p["kind"], p["kind"])) for p in planted}
    reported = {(frozenset((f.case, f.evidence["duplicate_of"])) if f.kind == "leakage" else f.case, f.kind)
                for f in findings if f.kind in kinds}
    return len(truth & reported), len(truth), len(reported - truth)


def test_planted_2d_pitfalls_are_found_without_false_alarms(tmp_path):
    """Many small phantoms, each with a random set of pitfalls (or none): >= 95 % found, <= 5 % false alarms."""
    rng = np.random.default_rng(7)
    found = planted = false = chances = 0
    for trial in range(16):
        if trial % 2 == 0:
            kinds = [k for k in ("leakage", "mixed_channels", "class_imbalance", "small_validation") if rng.random() < 0.5]
            manifest = synth_xray(tmp_path / f"x{trial}", per_class=6, seed=trial, pitfalls=kinds or "none")
            checked = {"leakage", "mixed_channels", "class_imbalance", "small_validation"}
        else:
            kinds = [k for k in ("lossy_mask", "mask_size", "unreadable", "leakage", "mixed_channels") if rng.random() < 0.5]
            style = ("isic", "busi")[trial // 2 % 2]
            manifest = synth_seg2d(tmp_path / f"s{trial}", cases=10, seed=trial, style=style, pitfalls=kinds or "none")
            checked = {"lossy_mask", "geometry_mismatch", "unreadable", "leakage", "mixed_channels"}
        card = build_data_card(tmp_path / (f"x{trial}" if trial % 2 == 0 else f"s{trial}"))
        hit, n, wrong = _score(check_dataset(card), manifest["pitfalls"], checked)
        found, planted, false = found + hit, planted + n, false + wrong
        chances += len(card.cases) * len(checked)
    assert planted >= 20
    assert found / planted >= 0.95, (found, planted)
    assert false / chances <= 0.05, (false, chances)
    assert false == 0  # on these phantoms nothing clean is flagged at all


@pytest.mark.parametrize("dims", [2, 3])
def test_medmnist_npz_is_read_by_its_keys(tmp_path, dims):
    from jupyter_medagent.synth.phantom2d import synth_medmnist

    manifest = synth_medmnist(tmp_path / "mm", per_class=6, dims=dims)
    card = build_data_card(tmp_path / "mm")
    assert card.layout == "MedMNIST .npz" and card.dims == dims
    assert card.splits == {"testing": 10, "training": 12, "validation": 10}
    assert {c.case_id: c.group for c in card.cases} == {c["case"]: f"class {c['class']}" for c in manifest["cases"]}
    image = load_pair(card.cases[0])[0]
    assert image.shape == ((28, 28, 1) if dims == 2 else (28, 28, 28))


def test_a_multi_label_medmnist_archive_gives_findings(tmp_path):
    (tmp_path / "mm").mkdir()
    labels = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], np.uint8)
    np.savez_compressed(tmp_path / "mm" / "chestmnist.npz", train_images=np.zeros((3, 28, 28), np.uint8),
                        train_labels=labels)
    card = build_data_card(tmp_path / "mm")
    assert [c.labels for c in card.cases] == [["finding 0", "finding 2"], [], ["finding 1"]]
