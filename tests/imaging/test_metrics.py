import math

import numpy as np
import pytest

from jupyter_medagent.imaging import dice_per_label, ejection_fraction, hd95_per_label, myocardial_mass_g, volumes_ml


def test_dice_matches_hand_computation():
    ref = np.zeros((10, 10, 1), np.uint8)
    pred = np.zeros_like(ref)
    ref[0:4, 0:5] = 1  # 20 voxels
    pred[0:4, 1:6] = 1  # 20 voxels, 16 shared
    ref[6:8, 6:8] = 2
    assert dice_per_label(pred, ref) == pytest.approx({1: 2 * 16 / 40, 2: 0.0})


def test_empty_structures_follow_the_stated_rule():
    empty = np.zeros((5, 5, 5), np.uint8)
    some = empty.copy()
    some[2, 2, 2] = 1
    assert dice_per_label(empty, empty, labels=[1]) == {1: 1.0}
    assert hd95_per_label(empty, empty, labels=[1]) == {1: 0.0}
    assert dice_per_label(empty, some, labels=[1]) == {1: 0.0}
    assert math.isnan(hd95_per_label(empty, some, labels=[1])[1])


def test_hd95_uses_spacing():
    ref = np.zeros((20, 20, 3), np.uint8)
    ref[5:15, 5:15, 1] = 1
    pred = np.roll(ref, 2, axis=0)
    voxels = hd95_per_label(pred, ref)[1]
    mm = hd95_per_label(pred, ref, spacing=(1.5, 1.5, 8.0))[1]
    assert voxels == pytest.approx(2.0)
    assert mm == pytest.approx(3.0)


def test_clinical_measures():
    label = np.zeros((10, 10, 10), np.uint8)
    label[:5] = 3
    assert volumes_ml(label, (2.0, 2.0, 5.0)) == {3: pytest.approx(500 * 20 / 1000)}
    assert ejection_fraction(150.0, 60.0) == pytest.approx(60.0)
    assert myocardial_mass_g(100.0) == pytest.approx(105.0)
    with pytest.raises(ValueError, match="end-diastolic volume"):
        ejection_fraction(0.0, 10.0)


def test_hd95_prints_no_warning_about_monais_own_deprecated_argument():
    """MONAI passes its deprecated always_return_as_numpy to itself: every evaluation cell showed the FutureWarning."""
    import warnings

    ref = np.zeros((20, 20, 3), np.uint8)
    ref[5:15, 5:15, 1] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hd95_per_label(np.roll(ref, 2, axis=0), ref)[1] == pytest.approx(2.0)
