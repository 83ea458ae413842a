import io

import numpy as np
from PIL import Image

from jupyter_medagent.imaging import load_volume, render_montage
from jupyter_medagent.imaging.render import PALETTE


def _decode(montage):
    return np.asarray(Image.open(io.BytesIO(montage.png)).convert("RGB"))


def test_isotropic_volume_gives_three_planes_with_contours():
    img = np.random.default_rng(0).random((64, 64, 64)).astype(np.float32)
    lab = np.zeros((64, 64, 64), np.uint8)
    lab[20:40, 20:40, 20:40] = 2
    m = render_montage(img, lab, spacing=(1, 1, 1), title="cube")
    pixels = _decode(m)
    assert pixels.shape[:2] == (m.height, m.width)
    assert m._repr_png_() == m.png
    colour = PALETTE[1]
    assert (np.all(pixels == colour, axis=-1)).sum() > 100  # label 2's contour is drawn in its colour


def test_thick_slices_keep_physical_aspect(phantom_clean):
    folder, _ = phantom_clean
    img = load_volume(folder / "imagesTr" / "patient001_ED_0000.nii.gz")
    lab = load_volume(folder / "labelsTr" / "patient001_ED.nii.gz")
    m = render_montage(img, lab, lab.array, label_names={1: "RV", 2: "MYO", 3: "LV"})
    pixels = _decode(m)
    for value in (1, 2, 3):
        assert np.all(pixels == PALETTE[value - 1], axis=-1).any()
    # Short-axis panels of a square 128x128 matrix stay square: two rows of up to four panels.
    assert m.width < 1.5 * 4 * 240 and m.height > 2 * 240


def test_anisotropic_panel_width_follows_spacing():
    img = np.zeros((40, 40, 40), np.float32)
    narrow = render_montage(img, spacing=(1.0, 1.0, 1.0))
    wide = render_montage(img, spacing=(2.0, 1.0, 1.0))
    assert wide.width > narrow.width  # x voxels twice as wide on screen
