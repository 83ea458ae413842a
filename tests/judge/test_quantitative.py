import numpy as np
import pytest
from scipy import ndimage

from jupyter_medagent.imaging import Volume, build_data_card, load_volume
from jupyter_medagent.judge import check_dataset, check_pair, check_prediction, detect_convention, verdict_of
from jupyter_medagent.contracts.findings import PITFALL_KINDS, Finding


@pytest.fixture(scope="module")
def mni():
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_template

    t1, mask = load_mni152_template(resolution=2), load_mni152_brain_mask(resolution=2)
    return Volume(np.asanyarray(t1.dataobj), t1.affine), Volume(np.asanyarray(mask.dataobj).astype(np.uint8), mask.affine)


def test_real_brain_mask_correct_pair_is_ok(mni):
    image, mask = mni
    findings = check_pair(image, mask, "mni152")
    assert findings == [] and verdict_of(findings) == "ok"


@pytest.mark.parametrize("axis", [1, 2])  # anterior-posterior, superior-inferior (left-right is near symmetric)
def test_real_brain_mask_flipped_copy_is_flagged(mni, axis):
    image, mask = mni
    flipped = Volume(np.flip(mask.array, axis).copy(), mask.affine)
    findings = check_pair(image, flipped, "mni152")
    assert [f.kind for f in findings] == ["orientation_flip"]
    assert findings[0].evidence["flip_axis"] == axis
    assert verdict_of(findings) == "flag"


def test_real_anatomical_image_with_derived_mask(nibabel_data):
    image = load_volume(nibabel_data / "anatomical.nii")
    smooth = ndimage.gaussian_filter(image.array.astype(float), 1)
    mask = Volume((smooth > np.percentile(smooth, 60)).astype(np.uint8), image.affine)
    assert check_pair(image, mask, "anat") == []
    flipped = Volume(np.flip(mask.array, 2).copy(), image.affine)
    assert [f.kind for f in check_pair(image, flipped, "anat")] == ["orientation_flip"]


def test_geometry_mismatches(nibabel_data):
    image = load_volume(nibabel_data / "anatomical.nii")
    mask = (image.array > np.median(image.array)).astype(np.uint8)
    other_spacing = Volume(mask, image.affine @ np.diag([0.5, 1, 1, 1]))
    assert [f.kind for f in check_pair(image, other_spacing)] == ["spacing_mismatch"]
    shifted = image.affine.copy()
    shifted[:3, 3] += 30
    assert [f.kind for f in check_pair(image, Volume(mask, shifted))] == ["geometry_mismatch"]
    cropped = Volume(mask[:-1], image.affine)
    assert [f.kind for f in check_pair(image, cropped)] == ["geometry_mismatch"]


def test_phantom_pitfalls_detected_on_the_right_case_with_the_right_kind(phantom_all):
    folder, manifest = phantom_all
    findings = check_dataset(build_data_card(folder))
    reported = {(f.case, f.kind) for f in findings}
    planted = {(c["case"], p["kind"]) for c in manifest["cases"] for p in c["pitfalls"]}
    assert planted <= reported
    clean = {c["case"] for c in manifest["cases"] if not c["pitfalls"]}
    assert not [f for f in findings if f.case in clean]
    assert {f.kind for f in findings} <= set(PITFALL_KINDS)


def test_findings_carry_the_fix(phantom_all):
    folder, manifest = phantom_all
    findings = check_dataset(build_data_card(folder))
    by_kind = {f.kind: f for f in findings}
    assert by_kind["label_convention"].evidence["mapping"] == {"1": 3, "2": 2, "3": 1}
    assert "flip_axis" in by_kind["orientation_flip"].evidence
    assert by_kind["axis_permutation"].evidence["permute"] == [1, 0, 2]


def test_convention_and_prediction_plausibility(phantom_clean):
    folder, _ = phantom_clean
    label = load_volume(folder / "labelsTr" / "patient001_ED.nii.gz").array.astype(np.int16)
    assert detect_convention(label) == "acdc"
    swapped = np.select([label == 1, label == 3], [3, 1], label)
    assert detect_convention(swapped) == "mnms"
    assert check_prediction(label, "p1") == []
    broken = label.copy()
    broken[(label == 2) & (np.indices(label.shape)[0] > 64)] = 0  # half the myocardial ring missing
    kinds = {f.kind for f in check_prediction(broken, "p1")}
    assert "implausible_anatomy" in kinds
    no_rv = np.where(label == 1, 0, label)
    assert [f.kind for f in check_prediction(no_rv, "p1")] == ["missing_structure"]
    fragments = label.copy()
    fragments[2:8, 2:8, :] = 3
    assert "fragmented" in {f.kind for f in check_prediction(fragments, "p1")}


def test_unknown_finding_kind_rejected():
    with pytest.raises(ValueError):
        Finding("c", "looks_odd", "warning", "?")
