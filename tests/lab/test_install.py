"""What a user sees after installing: the labextension and the server extension enabled and OK."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

JUPYTER = Path(sys.executable).parent / "jupyter"


def listing(*args: str) -> str:
    result = subprocess.run([str(JUPYTER), *args], capture_output=True, text=True, timeout=120)
    return re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)


def test_labextension_is_enabled_and_ok():
    assert re.search(r"jupyter-medagent v0\.1\.0 enabled OK \(python, jupyter_medagent\)", listing("labextension", "list"))


def test_server_extension_is_enabled_and_validates():
    out = listing("server", "extension", "list")
    assert re.search(r"jupyter_medagent enabled", out) and re.search(r"jupyter_medagent 0\.1\.0 OK", out)
