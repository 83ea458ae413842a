"""One version: jupyter_medagent/__init__.py holds it, the wheel's metadata is read from it (hatch's version source)
and the labextension's package.json, which npm and JupyterLab read, says the same."""

from __future__ import annotations

import json
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import jupyter_medagent

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_written_once_and_the_labextension_agrees():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "jupyter_medagent/__init__.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*", jupyter_medagent.__version__)
    assert json.loads((ROOT / "labextension" / "package.json").read_text())["version"] == jupyter_medagent.__version__
    assert version("jupyter_medagent") == jupyter_medagent.__version__
