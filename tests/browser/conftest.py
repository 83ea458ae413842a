"""JupyterLab with the MedAgent extension on 127.0.0.1, driven by Debian's Chromium through Playwright.

Set MEDAGENT_REQUIRE_BROWSER=1 (``.ci/run`` does) to fail instead of skipping when Chromium is missing.
Screenshots land in test-artifacts/browser/.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

CHROMIUM = os.environ.get("MEDAGENT_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chromium_path():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("MEDAGENT_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


# pytest-jupyter (loaded for tests/server) closes the thread's event loop and cleans up an in-process
# server after every test. Here Playwright's sync API owns that loop and JupyterLab runs in its own
# process, so both autouse fixtures stand down.
@pytest.fixture(autouse=True)
def jp_asyncio_loop():
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup():
    yield


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium_path):
    """A JupyterLab server on a free port, its root holding a small phantom and a notebook."""
    from jupyter_medagent.synth.replicas import synth_cardiac

    root = tmp_path_factory.mktemp("lab")
    synth_cardiac(root / "data", cases=4, seed=1, pitfalls=["orientation_flip"])
    for name in ("measure.ipynb", "train.ipynb"):
        new_notebook(root, name)
    yield from serve_lab(root)


def serve_lab(root: Path, env: dict | None = None):
    """Run JupyterLab on ``root`` (with ``env``) until the generator is closed; yields (url, root). Its user
    settings (the sidebar saves its run options there) live in ``root``, not in this machine's home."""
    port = _free_port()
    env = {**(env or os.environ), "JUPYTERLAB_SETTINGS_DIR": str(root / ".user-settings")}
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         "--ServerApp.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
         "--ServerApp.disable_check_xsrf=False", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError(f"JupyterLab did not start; see {root / 'jupyterlab.log'}") from None
            time.sleep(0.3)
    yield url, root
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "jupyterlab.log", ARTIFACTS / f"jupyterlab-{root.name}.log")


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=FLAGS)
        yield browser
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "page" in item.funcargs:  # what the browser showed at the failure
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        item.funcargs["page"].screenshot(path=str(ARTIFACTS / f"failed-{item.name}.png"), full_page=True)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    page = context.new_page()
    yield page
    context.close()


def new_notebook(root: Path, name: str, sources: list[str] = (),
                 kernel: tuple[str, str] = ("python3", "Python 3 (ipykernel)")) -> Path:
    """A notebook in the lab's root with these code cells (a title cell when there are none), on ``kernel``
    (its spec name and display name)."""
    cells = [nbformat.v4.new_code_cell(s) for s in sources] or [nbformat.v4.new_markdown_cell(f"# {name}")]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": kernel[0], "display_name": kernel[1], "language": "python"}
    nbformat.write(nb, root / name)
    return root / name


def kernel_ready(url: str, notebook: str, timeout: float = 60) -> str:
    """Wait until the notebook's session has a kernel that reports idle; return its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sessions = json.load(urllib.request.urlopen(f"{url}/api/sessions"))
        for s in sessions:
            if s["path"] == notebook and s["kernel"]["execution_state"] == "idle":
                return s["kernel"]["id"]
        time.sleep(0.5)
    raise AssertionError(f"no idle kernel for {notebook}")
