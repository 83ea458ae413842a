"""A scripted task the model servers replay: look at the data, compute a number in the kernel,
render a picture, judge it, finish. Small enough to run in seconds with a real kernel."""

from __future__ import annotations

import pytest

from jupyter_medagent.kernel import KernelClientExecutor
from .wire import WireServer

# Cells a competent model would write for "count the cases and report it" on the phantom.
COUNT_CELL = """import json
from pathlib import Path
from IPython.display import display
cases = sorted(p.name for p in Path(DATA).glob('*/*.nii.gz'))
display({'application/vnd.medagent.metrics+json': {'n_files': len(cases)}}, raw=True)
print(f'{len(cases)} files')
"""
PICTURE_CELL = """import io
import numpy as np
from PIL import Image
from IPython.display import Image as Picture, display
buffer = io.BytesIO()
Image.fromarray((np.arange(64 * 48) % 255).reshape(48, 64).astype('uint8')).save(buffer, format='PNG')
display(Picture(data=buffer.getvalue()))
"""


def task_steps(data_dir: str) -> list[tuple[str, dict]]:
    return [("inspect_data", {}),
            ("add_cell", {"source": COUNT_CELL.replace("DATA", repr(data_dir)), "note": "Count the scans."}),
            ("add_cell", {"source": PICTURE_CELL, "note": "Show a picture to judge."}),
            ("judge", {"context": "a test picture"}),
            ("finish", {"status": "solved", "summary": "counted the scans"})]


@pytest.fixture
def server():
    servers = []

    def start(script):
        servers.append(WireServer(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def kernel(tmp_path):
    executor = KernelClientExecutor(cwd=tmp_path)
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    from jupyter_medagent.synth.replicas import synth_cardiac

    out = tmp_path_factory.mktemp("small")
    synth_cardiac(out, cases=2, seed=5, pitfalls="none")
    return out
