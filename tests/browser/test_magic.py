"""%%medagent in a real JupyterLab kernel, in Chromium: the cells it writes appear in the user's notebook below
the magic's cell (the same mirror as the sidebar), its output shows the sidebar's timeline, and it leaves a
refined notebook named after the user's, nothing else."""

from __future__ import annotations

import os
import re

import nbformat
import pytest

from .conftest import ARTIFACTS, kernel_ready, new_notebook

pytestmark = pytest.mark.browser

MEASURE = "Compute the LV volumes and ejection fraction of each patient from the given labels."


def test_the_magic_mirrors_its_cells_and_shows_the_timeline(page, lab):
    url, root = lab
    new_notebook(root, "magic.ipynb", ["%load_ext jupyter_medagent", f"%%medagent --data data --no-verify\n{MEASURE}"])
    log_before = (root / "jupyterlab.log").stat().st_size
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{url}/lab/tree/magic.ipynb?reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    kernel_ready(url, "magic.ipynb")
    page.click(".jp-Notebook .jp-Cell >> nth=0")
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-MedAgent-runOutput")
    output.wait_for(timeout=60_000)
    # While it runs, cells appear below the magic's cell with their outputs.
    page.wait_for_selector(".jp-Notebook .jp-MedAgent-agentCell .jp-OutputArea-output", timeout=60_000)
    page.wait_for_selector('.jp-MedAgent-runOutput .jp-MedAgent-finished[data-status="solved"]', timeout=180_000)
    page.screenshot(path=str(ARTIFACTS / "magic-solved.png"), full_page=True)

    # The timeline is the sidebar's: a thumbnail, verdict badges, the per-patient EF as the headline.
    thumbnail = output.locator("img.jp-MedAgent-thumbnail").first
    assert thumbnail.evaluate("img => img.naturalWidth") > 100
    assert output.locator('.jp-MedAgent-verdict[data-verdict="flag"]').count() >= 1
    assert output.locator('.jp-MedAgent-verdict[data-verdict="ok"]').count() >= 1
    assert "Ejection fraction per patient" in output.locator(".jp-MedAgent-headline caption").all_inner_texts()
    # The agent's cells are in the notebook, in order, right below the magic's cell, as the agent's.
    cells = page.locator(".jp-Notebook .jp-Cell")
    classes = [cells.nth(i).get_attribute("class") for i in range(cells.count())]
    agent = [i for i, c in enumerate(classes) if "jp-MedAgent-agentCell" in c]
    written = output.locator('.jp-MedAgent-event[data-kind="cell_written"]').count()
    assert len(agent) == written >= 5 and agent == list(range(2, 2 + written))
    assert page.locator(".jp-Notebook .jp-MedAgent-agentCell .jp-RenderedImage img").count() >= 1
    # The per-patient table renders as a table (escaped headers), in the live notebook.
    assert page.locator(".jp-Notebook .jp-MedAgent-agentCell .jp-RenderedMarkdown table th",
                        has_text="EF (%)").count() >= 1

    # Named after the user's notebook; no junk; not verified, and said so; data path relative to the notebook.
    refined = root / "magic-medagent.ipynb"
    assert refined.exists() and not (root / "medagent.ipynb").exists()
    assert not list(root.glob(".medagent-*")) and not list(root.glob("magic_files/.medagent-*"))
    nb = nbformat.read(refined, as_version=4)
    assert nb.metadata["medagent"]["verified"] == "skipped" and "Not verified" in nb.cells[-1].source
    setup = next(c.source for c in nb.cells if c.cell_type == "code")
    assert "DATA = HERE / 'data'" in setup and str(root) not in setup
    umask = os.umask(0)
    os.umask(umask)
    assert refined.stat().st_mode & 0o777 == 0o666 & ~umask
    # No comm errors in the browser, no PNG bytes in the server's log.
    assert not [m for m in console if "Exception opening new comm" in m]
    with open(root / "jupyterlab.log", "rb") as log:
        log.seek(log_before)
        added = log.read()
    assert len(added) < 100_000 and b"\x89PNG" not in added and not re.search(rb"iVBORw0KGgo[A-Za-z0-9+/]{200}", added)

    # Saved and reopened: the timeline (from what the output kept) and the blue edges are still there.
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)
    page.reload()
    page.wait_for_selector(".jp-MedAgent-runOutput .jp-MedAgent-finished", timeout=60_000)
    assert page.locator(".jp-MedAgent-runOutput img.jp-MedAgent-thumbnail").count() >= 1
    saved = nbformat.read(root / "magic.ipynb", as_version=4)
    assert sum(c.metadata.get("medagent", {}).get("written_by") == "agent" for c in saved.cells) == written
    # The blue edge comes back from the cells' metadata (the notebook draws only the cells in view).
    page.locator(".jp-Notebook .jp-Cell").nth(2).scroll_into_view_if_needed()
    assert "jp-MedAgent-agentCell" in page.locator(".jp-Notebook .jp-Cell").nth(2).get_attribute("class")
