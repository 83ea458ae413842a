"""binder/ installs what the README's install installs (scripts/install.sh): the same pins, the same project extras
a user needs, the sandbox, and checks the extensions are enabled."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pip_installs(script: Path) -> list[str]:
    return [line for line in script.read_text().splitlines() if re.search(r"-m pip install", line)]


def torch_pin(lines: list[str]) -> str:
    return next(re.search(r'"(torch==[^"]+)"', line)[1] for line in lines if "torch==" in line)


def test_binder_uses_the_readme_installs_pins():
    readme_install = pip_installs(ROOT / "scripts" / "install.sh")
    binder = pip_installs(ROOT / "binder" / "postBuild")
    assert torch_pin(binder) == torch_pin(readme_install) == "torch==2.13.0"
    # The project with the same constraints file, so every other package gets the same pinned version.
    project = next(line for line in binder if ".[" in line)
    assert "-c constraints.txt" in project and "-c constraints.txt" in next(line for line in readme_install if ".[" in line)
    extras = set(re.search(r'\.\[([a-z,]+)\]', project)[1].split(","))
    readme_extras = set(re.search(r'\.\[([a-z,]+)\]', next(line for line in readme_install if ".[" in line))[1].split(","))
    # Everything a user gets on one machine; the test tools and the Ray client (for a cluster) are not needed there.
    assert extras == readme_extras - {"test", "ray"}
    # The same pip, and nothing installed outside these lines.
    assert [line for line in binder if "pip>=" in line] and re.search(r'"pip>=(\d+)"', binder[0])[1] == \
        re.search(r'"pip>=(\d+)"', readme_install[0])[1]


def test_binder_gets_the_sandbox_and_python_of_the_readme():
    assert "bubblewrap" in (ROOT / "binder" / "apt.txt").read_text().split()
    assert re.search(r"install-debian\.sh bwrap bubblewrap", (ROOT / "Makefile").read_text())
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    assert 'requires-python = ">=3.11"' in (ROOT / "pyproject.toml").read_text()


def test_postbuild_is_an_executable_bash_script_that_checks_the_extensions():
    post_build = ROOT / "binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111
    assert subprocess.run(["bash", "-n", str(post_build)]).returncode == 0
    text = post_build.read_text()
    assert "set -euo pipefail" in text and "labextension list" in text and "server extension list" in text
