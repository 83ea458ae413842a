"""Bad data ends a run with the reason `medagent inspect` gives, naming the file, said once and without the fences
the model reads data in."""

import json
import subprocess
import sys

import pytest


def run_on(data, tmp_path):
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", "run", "Segment the LV, myocardium and RV",
                             "--data", str(data), "--out", str(tmp_path / "nb.ipynb"), "--no-verify"],
                            capture_output=True, text=True, timeout=300)
    return result.stdout, result.stderr  # the summary; the run's log


def inspect(data):
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", "inspect", str(data), "--json"],
                            capture_output=True, text=True, timeout=120)
    return result


@pytest.mark.parametrize("kind", ["readme_only", "text_named_gz"])
def test_bad_data_is_told_in_inspects_words_once_without_fences(tmp_path, kind):
    data = tmp_path / kind
    if kind == "readme_only":
        data.mkdir()
        (data / "README.md").write_text("Scans to follow.\n")
        expected = "no images found"
        assert expected in inspect(data).stderr  # what `medagent inspect` says about the folder
    else:
        for folder in ("imagesTr", "labelsTr"):
            (data / folder).mkdir(parents=True)
        for case in ("case_001", "case_002"):
            (data / "imagesTr" / f"{case}_0000.nii.gz").write_text("not an image\n")
            (data / "labelsTr" / f"{case}.nii.gz").write_text("not a label\n")
        expected = "named .gz but is not gzip-compressed"
        card = json.loads(inspect(data).stdout)["card"]
        assert all(expected in c["error"] for c in card["cases"])
    summary, log = run_on(data, tmp_path)
    for said in (summary, log):
        assert "untrusted-data" not in said and "has no label maps" not in said and ".." not in said
        assert said.count(expected) == 1, said
    if kind == "text_named_gz":
        assert "case_001_0000.nii.gz" in summary
    assert not (tmp_path / "nb_files").exists()  # a failed run leaves no empty output folder
