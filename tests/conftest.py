"""Shared fixtures: real images shipped inside installed packages, and small phantom data sets."""

from __future__ import annotations

from pathlib import Path

import nibabel
import pytest

NIBABEL_DATA = Path(nibabel.__file__).parent / "tests" / "data"


@pytest.fixture(scope="session")
def nibabel_data() -> Path:
    return NIBABEL_DATA


@pytest.fixture(scope="session")
def phantom_all(tmp_path_factory) -> tuple[Path, dict]:
    """20 patients (40 cases) with every pitfall kind planted twice."""
    from jupyter_medagent.synth.replicas import synth_cardiac

    out = tmp_path_factory.mktemp("phantom_all")
    return out, synth_cardiac(out, cases=20, seed=3, pitfalls="all")


@pytest.fixture(scope="session")
def phantom_clean(tmp_path_factory) -> tuple[Path, dict]:
    from jupyter_medagent.synth.replicas import synth_cardiac

    out = tmp_path_factory.mktemp("phantom_clean")
    return out, synth_cardiac(out, cases=4, seed=11, pitfalls="none")
