"""``from jupyter_medagent import view``: an ipyniivue widget with the image and a transparent-background label overlay."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ipyniivue")

from jupyter_medagent import view  # noqa: E402
from jupyter_medagent.contracts.errors import DataError  # noqa: E402


def test_image_and_label_files(phantom_clean):
    root, manifest = phantom_clean
    case = manifest["cases"][0]
    widget = view(root / case["image"], root / case["label"])
    image, label = widget.volumes
    assert image.colormap == "gray" and image.opacity == 1.0
    assert label.opacity == 0.5 and label.cal_min == 0.5 and label.cal_max == 3.0  # ACDC labels 0..3; 0 stays clear
    assert str(label.path).endswith(case["label"].split("/")[-1])


def test_arrays_are_written_for_the_viewer():
    widget = view(np.random.default_rng(0).normal(size=(16, 16, 4)), (np.arange(1024).reshape(16, 16, 4) % 3))
    assert [str(v.path).rsplit("/", 1)[-1] for v in widget.volumes] == ["image.nii.gz", "label.nii.gz"]
    assert widget.volumes[1].cal_max == 2.0


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="missing.nii.gz: no such image file"):
        view(tmp_path / "missing.nii.gz")
    with pytest.raises(TypeError, match="not dict"):
        view({"path": "x"})



def test_a_broken_file_is_named_instead_of_loading_forever(tmp_path):
    broken = tmp_path / "case01.nii.gz"
    broken.write_text("not an image\n")
    with pytest.raises(DataError, match="case01.nii.gz: named .gz but is not gzip-compressed"):
        view(broken)
