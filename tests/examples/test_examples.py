"""The notebooks a newcomer opens first (examples/) run top to bottom, offline, as they are shipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def run_example(tmp_path, monkeypatch):
    """Run a copy in a fresh folder (the examples write their data next to themselves), its kernel told the
    notebook's path as JupyterLab tells it (JPY_SESSION_NAME)."""
    def run(name: str) -> nbformat.NotebookNode:
        path = tmp_path / name
        shutil.copy(EXAMPLES / name, path)
        monkeypatch.setenv("JPY_SESSION_NAME", str(path))
        return execute(path, tmp_path)

    return run


def execute(path: Path, tmp_path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    return "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_every_example_is_tested():
    tested = {"01-cardiac-demo.ipynb", "02-measure-from-labels.ipynb", "03-spheres-3d.ipynb", "04-model-backends.ipynb"}
    assert {p.name for p in EXAMPLES.glob("*.ipynb")} == tested
    for path in EXAMPLES.glob("*.ipynb"):  # shipped clean: no outputs, no leftovers of a run
        nb = nbformat.read(path, as_version=4)
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name


def test_measure_from_labels(run_example, tmp_path):
    nb = run_example("02-measure-from-labels.ipynb")
    assert "Finished: solved" in text_of(nb)
    refined = nbformat.read(tmp_path / "02-measure-from-labels-medagent.ipynb", as_version=4)
    assert refined.metadata["medagent"]["verified"] == "yes"


def test_model_backends_runs_offline_by_default(run_example, monkeypatch):
    monkeypatch.delenv("MEDAGENT_EXAMPLE_BACKEND", raising=False)
    nb = run_example("04-model-backends.ipynb")
    out = text_of(nb)
    assert "offline" in out and "ready" in out and "Finished: solved" in out


@pytest.mark.slow
def test_cardiac_demo(run_example, tmp_path):
    nb = run_example("01-cardiac-demo.ipynb")
    out = text_of(nb)
    assert "Finished: solved" in out and "held-out patients" in out
    refined = nbformat.read(tmp_path / "01-cardiac-demo-medagent.ipynb", as_version=4)
    assert refined.metadata["medagent"]["verified"] == "skipped" and refined.metadata["medagent"]["status"] == "solved"


@pytest.mark.slow
def test_spheres_3d(run_example):
    nb = run_example("03-spheres-3d.ipynb")
    assert "Finished: solved" in text_of(nb)
