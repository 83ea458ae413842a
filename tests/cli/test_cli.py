"""The CLI through a real subprocess: JSON on stdout, exit codes, and bad input without tracebacks."""

import gzip
import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file


def medagent(*args):
    return subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", *map(str, args)], capture_output=True, text=True)


def test_synth_inspect_json_and_judge(tmp_path):
    out = tmp_path / "data"
    assert medagent("synth", "cardiac", out, "--cases", 3, "--pitfalls", "label_convention").returncode == 0
    result = medagent("inspect", out, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["card"]["n_cases"] == 6 and report["verdict"] == "flag"
    manifest = json.loads((out / "manifest.json").read_text())
    planted = {c["case"] for c in manifest["cases"] if c["pitfalls"]}
    assert {f["case"] for f in report["findings"]} == planted
    case = next(c for c in manifest["cases"] if not c["pitfalls"])
    ok = medagent("judge", "--image", out / case["image"], "--label", out / case["label"], "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["verdict"] == "ok"


def _nifti(path, array):
    nib.save(nib.Nifti1Image(array, np.eye(4)), str(path))
    return path


def _bad_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(gzip.compress(np.random.default_rng(0).bytes(50000))[:3000])
    text = tmp_path / "notes.nii.gz"
    text.write_text("this is a text file")
    labels_only = tmp_path / "labels_only"
    (labels_only / "labelsTr").mkdir(parents=True)
    (labels_only / "imagesTr").mkdir()
    _nifti(labels_only / "labelsTr" / "case1.nii.gz", np.zeros((4, 4, 4), np.uint8))
    four_d = _nifti(tmp_path / "cine4d.nii.gz", np.zeros((4, 4, 4, 3), np.float32))
    image = _nifti(tmp_path / "image.nii.gz", np.zeros((4, 4, 4), np.float32))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelData
    no_pixels = tmp_path / "sr.dcm"
    ds.save_as(no_pixels)
    return [
        (("inspect", empty), "empty", "no images found"),
        (("judge", "--image", corrupt, "--label", image), "corrupt.nii.gz", "corrupt or truncated"),
        (("judge", "--image", text, "--label", image), "notes.nii.gz", "not gzip"),
        (("inspect", labels_only), "labels_only", "only label maps"),
        (("judge", "--image", four_d, "--label", image), "cine4d.nii.gz", "4D"),
        (("judge", "--image", no_pixels, "--label", image), "sr.dcm", "no pixel data"),
        (("judge", "--image", tmp_path / "missing.nii", "--label", image), "missing.nii", "no such file"),
    ]


@pytest.mark.parametrize("index", range(7))
def test_bad_input_catalogue_gives_a_clear_error(tmp_path, index):
    args, names, problem = _bad_inputs(tmp_path)[index]
    result = medagent(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert names in result.stderr and problem in result.stderr
    assert result.stderr.count("\n") == 1  # one clear line
