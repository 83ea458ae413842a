import json

import nibabel as nib
import numpy as np
import pytest

from jupyter_medagent.imaging import dice_per_label, ejection_fraction, load_volume, volumes_ml
from jupyter_medagent.synth.replicas import synth_cardiac
from jupyter_medagent.judge.findings import PITFALL_KINDS


def test_deterministic_for_a_seed(tmp_path):
    a = synth_cardiac(tmp_path / "a", cases=2, seed=5)
    b = synth_cardiac(tmp_path / "b", cases=2, seed=5)
    assert a["patients"] == b["patients"]
    for case in a["cases"]:
        x = nib.load(str(tmp_path / "a" / case["image"])).get_fdata()
        y = nib.load(str(tmp_path / "b" / case["image"])).get_fdata()
        assert np.array_equal(x, y)


def test_manifest_truth_matches_the_labels(phantom_clean):
    folder, manifest = phantom_clean
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    for patient, truth in manifest["patients"].items():
        vols = {}
        for phase in ("ED", "ES"):
            lab = load_volume(folder / "labelsTr" / f"{patient}_{phase}.nii.gz")
            vols[phase] = volumes_ml(lab.array, lab.spacing, labels=[3])[3]
            assert 0.8 < lab.spacing[0] / 1.4 < 1.2 and 6.5 < lab.spacing[2] < 9.5
        assert vols["ED"] == pytest.approx(truth["lv_edv_ml"], abs=1e-2)
        assert ejection_fraction(vols["ED"], vols["ES"]) == pytest.approx(truth["lv_ef_percent"], abs=1e-2)
        assert 25 <= truth["lv_ef_percent"] <= 75


def test_every_pitfall_planted_twice_in_a_clean_majority(phantom_all):
    _, manifest = phantom_all
    planted = [p["kind"] for c in manifest["cases"] for p in c["pitfalls"]]
    assert sorted(set(planted)) == sorted(PITFALL_KINDS)
    assert all(planted.count(k) == 2 for k in PITFALL_KINDS)
    assert all(len(c["pitfalls"]) <= 1 for c in manifest["cases"])
    assert len(planted) < len(manifest["cases"]) / 2


def test_planted_files_really_carry_the_pitfall(phantom_all):
    folder, manifest = phantom_all
    for case in manifest["cases"]:
        if not case["pitfalls"]:
            continue
        kind = case["pitfalls"][0]["kind"]
        image, label = load_volume(folder / case["image"]), load_volume(folder / case["label"])
        if kind == "empty_label":
            assert not label.array.any()
        elif kind == "interpolated_labels":
            assert np.any(np.mod(label.array, 1) != 0)
        elif kind == "spacing_mismatch":
            assert not np.allclose(image.spacing, label.spacing)
        elif kind == "intensity_scale":
            assert image.array.dtype == np.float32


def test_a_threshold_does_not_solve_it(phantom_clean):
    """Best single intensity window per structure (an oracle threshold) stays far below Dice 0.9."""
    folder, manifest = phantom_clean
    scores = {1: [], 2: [], 3: []}
    for case in manifest["cases"]:
        img = load_volume(folder / case["image"]).array.astype(np.float32)
        lab = load_volume(folder / case["label"]).array
        for value in scores:
            inside = img[lab == value]
            lo, hi = np.percentile(inside, [5, 95])
            guess = ((img >= lo) & (img <= hi)).astype(np.uint8) * value
            scores[value].append(dice_per_label(guess, lab, labels=[value])[value])
    means = {v: float(np.mean(s)) for v, s in scores.items()}
    assert max(means.values()) < 0.9, means
    assert np.mean(list(means.values())) < 0.6, means


def test_unknown_pitfall_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown pitfall kind"):
        synth_cardiac(tmp_path, cases=1, pitfalls="flipped")
