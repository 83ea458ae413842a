"""inspect_data runs on the host: it reads the run's data folder and nothing a path or a link leads to
outside it."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from jupyter_medagent.contracts.task import Task
from jupyter_medagent.agent.tools import Toolbox
from jupyter_medagent.contracts.errors import DataError
from jupyter_medagent.notebook.draft import DraftNotebook
from jupyter_medagent.safety.confine import confined_data_folder


def _volume(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2), np.float32), np.eye(4)), str(path))


@pytest.fixture()
def project(tmp_path):
    data, out, secret = tmp_path / "data", tmp_path / "analysis_files", tmp_path / "private"
    _volume(data / "case0.nii.gz")
    _volume(secret / "SMITH^JANE" / "scan.nii.gz")
    out.mkdir()
    return data, out, secret


class _NoKernel:
    def execute(self, code, timeout=None, on_output=None):
        from jupyter_medagent.agent.protocols import ExecutionResult

        return ExecutionResult([], None, 0.0)


def _inspect(data, path=None):
    toolbox = Toolbox(Task("segment", str(data), str(data.parent / "analysis_files")), _NoKernel(),
                      DraftNotebook(), judges=[])
    steps = toolbox.tool_inspect_data(path) if path is not None else toolbox.tool_inspect_data()
    try:
        while True:
            next(steps)
    except StopIteration as done:
        return done.value


@pytest.mark.parametrize("how", ["absolute", "dot-dot", "output folder link", "link in the data folder"])
def test_inspect_data_refuses_what_lies_outside_the_data_folder(project, how):
    data, out, secret = project
    if how == "absolute":
        path = str(secret)
    elif how == "dot-dot":
        path = "../private"
    elif how == "output folder link":  # what a sandboxed cell can make in the folder it may write
        (out / "peek").symlink_to(secret)
        path = str(out / "peek")
    else:
        (data / "more").symlink_to(secret)
        path = None
    observation = _inspect(data, path)
    assert observation.is_error and "inspect_data refused" in observation.text
    assert "SMITH" not in observation.text.replace(str(secret), "") and "scan.nii" not in observation.text
    assert "data folder" in observation.text


def test_inspect_data_reads_the_data_folder_and_its_subfolders(project):
    data, _, _ = project
    _volume(data / "sub" / "case1.nii.gz")
    (data / "alias.nii.gz").symlink_to(data / "case0.nii.gz")  # a link that stays inside is fine
    whole = _inspect(data)
    assert not whole.is_error and "case0" in whole.text
    sub = _inspect(data, "sub")
    assert not sub.is_error and "case1" in sub.text


def test_confined_folder_without_a_data_folder_says_so(tmp_path):
    with pytest.raises(DataError, match="no data folder"):
        confined_data_folder(str(tmp_path), None)
