"""In Chromium: on the "Python 3 (medagent sandbox)" kernel, what the kernel outputs never runs in the page,
whatever planted it (finding 9: a post_run_cell hook a model cell left behind printed a <script> into the user's
next cell, which JupyterLab rendered as trusted). The kernel's relay on the host cleans every output, so this
holds whatever happens inside the kernel; HTML tables still show."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .conftest import kernel_ready, new_notebook, serve_lab
from .test_untrusted_output import canary  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser
ROOT = Path(os.path.realpath(Path(__file__).resolve().parents[2]))


@pytest.fixture(scope="module")
def sandbox_lab(chromium_path, tmp_path_factory):
    """JupyterLab whose root (under the repository: the sandbox hides /tmp) may run the sandbox kernel, found
    in a Jupyter data folder outside that root."""
    from jupyter_medagent.isolation import sandbox_problem
    from jupyter_medagent.isolation.kernelspec import install

    if sandbox_problem():
        pytest.skip(sandbox_problem())
    place = ROOT / ".test-sandbox" / tmp_path_factory.mktemp("browser").name
    root, prefix = place / "lab", place / "jupyter"
    root.mkdir(parents=True)
    install(prefix=str(prefix))
    try:
        yield from serve_lab(root, env={**os.environ, "JUPYTER_PATH": str(prefix / "share" / "jupyter")})
    finally:
        shutil.rmtree(place, ignore_errors=True)
        if not any(place.parent.iterdir()):
            place.parent.rmdir()


def test_script_onerror_and_javascript_from_the_sandbox_kernel_do_not_run_and_tables_show(page, sandbox_lab,
                                                                                            canary):  # noqa: F811
    url, root = sandbox_lab
    canary_url, hits = canary
    payload = (f"<script>window.medagentScript = 1; fetch('{canary_url}/script')</script>"
               f"<img src='x-missing' onerror=\"window.medagentOnerror = 1; fetch('{canary_url}/onerror')\">")
    planted = ("from IPython.display import HTML, Javascript, display\n"
               f"display(HTML({payload!r}))\n"
               f"display(Javascript(\"window.medagentJs = 1; fetch('{canary_url}/js')\"))\n"
               "def later(*args):\n"
               f"    display(HTML({payload!r} + '<b>hook ran</b>'))\n"
               "get_ipython().events.register('post_run_cell', later)\n"
               "print('planted')")
    table = "import pandas as pd\npd.DataFrame({'label': ['LV', 'RV'], 'volume_ml': [120.5, 98.25]})"
    run_in_sandbox_kernel(page, url, root, "sandboxed.ipynb", [planted, "y = 41 + 1\ny", table])
    page.wait_for_selector(".jp-OutputArea-output table td:has-text('98.25')", timeout=60_000)
    page.wait_for_selector(".jp-OutputArea-output:has-text('hook ran')", timeout=30_000)
    page.wait_for_timeout(2000)
    flags = page.evaluate("[window.medagentScript, window.medagentOnerror, window.medagentJs]")
    assert flags == [None, None, None] and hits == []
    assert page.locator(".jp-OutputArea-output table th:has-text('volume_ml')").count() >= 1
    assert page.locator(".jp-OutputArea-output:has-text('planted')").count() >= 1


def test_a_hook_a_models_thread_plants_later_makes_the_page_fetch_nothing(page, sandbox_lab, canary):  # noqa: F811
    """Finding R2: a thread a model cell started registers a post_run_cell hook after the cell ended; the
    user's next cell then showed <img src=http://127.0.0.1:PORT/...>, and Chromium sent the Jupyter login
    cookie to PORT. Only data: images reach the page now; they still show."""
    url, root = sandbox_lab
    canary_url, hits = canary
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    shown = (f"<img src='{canary_url}/html-img'><img srcset='{canary_url}/srcset 1x'>"
             f"<div style=\"background-image: url('{canary_url}/css')\">styled</div>"
             f"<img class='medagent-data-png' src='data:image/png;base64,{png}'><b>hook ran</b>")
    planted = ("import threading, time\nfrom IPython.display import HTML, Markdown, display\n"
               "def later(*args):\n"
               f"    display(HTML({shown!r}))\n"
               f"    display(Markdown('![m]({canary_url}/markdown-img) **from markdown**'))\n"
               "def plant():\n    time.sleep(2)\n    get_ipython().events.register('post_run_cell', later)\n"
               "threading.Thread(target=plant, daemon=True).start()\nprint('started')")
    run_in_sandbox_kernel(page, url, root, "sleeper.ipynb", [planted, "import time\ntime.sleep(4)\ny = 41 + 1\ny", "y"])
    page.wait_for_selector(".jp-OutputArea-output:has-text('hook ran')", timeout=60_000)
    page.wait_for_selector(".jp-OutputArea-output strong:has-text('from markdown')", timeout=30_000)
    page.wait_for_timeout(2000)
    assert hits == []
    assert page.locator("img.medagent-data-png").count() >= 1  # the output's own raster still shows


def run_in_sandbox_kernel(page, url, root, name, cells):
    """Open a notebook of ``cells`` on the sandbox kernel in JupyterLab and run every cell, as a user does."""
    from jupyter_medagent.isolation.kernelspec import DISPLAY_NAME, SPEC_NAME

    new_notebook(root, name, cells, kernel=(SPEC_NAME, DISPLAY_NAME))
    page.goto(f"{url}/lab/tree/{name}?reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    kernel_ready(url, name, timeout=120)
    page.click(".jp-Notebook .jp-Cell >> nth=0")
    for _ in cells:
        page.keyboard.press("Shift+Enter")
