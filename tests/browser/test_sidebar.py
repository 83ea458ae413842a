"""End to end in headless Chromium: the MedAgent sidebar drives the offline agent in the open notebook."""

from __future__ import annotations

import pytest

from .conftest import ARTIFACTS, kernel_ready

pytestmark = pytest.mark.browser

MEASURE = "Compute the LV volumes and ejection fraction of each patient from the given labels."
SEGMENT = "Segment the left ventricle, myocardium and right ventricle and report the ejection fraction."


def open_sidebar(page, url, notebook):
    page.goto(f"{url}/lab/tree/{notebook}?reset")
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    kernel_ready(url, notebook)
    page.click('.jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id="jupyter-medagent:sidebar"]')
    sidebar = page.locator("#jupyter-medagent\\:sidebar")
    sidebar.wait_for(state="visible")
    page.wait_for_selector('.jp-MedAgent-backend option[value="offline"]', state="attached")
    return sidebar


def start(page, request):
    page.fill(".jp-MedAgent-request", request)
    page.fill(".jp-MedAgent-data", "data")
    page.click(".jp-MedAgent-start")


def test_a_request_in_the_sidebar_writes_and_runs_cells_in_the_notebook(page, lab):
    url, root = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sidebar = open_sidebar(page, url, "measure.ipynb")
    assert sidebar.get_attribute("data-state") == "idle"
    page.screenshot(path=str(ARTIFACTS / "1-sidebar-open.png"))
    start(page, MEASURE)
    page.wait_for_selector('.jp-MedAgent-sidebar[data-state="running"]', timeout=15_000)
    page.wait_for_selector('.jp-MedAgent-finished[data-status="solved"]', timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "2-measure-solved.png"), full_page=True)

    # The timeline shows the rendered slices as a thumbnail with the judge's verdict.
    thumbnail = page.locator("img.jp-MedAgent-thumbnail").first
    assert thumbnail.get_attribute("src").startswith("data:image/png;base64,")
    assert thumbnail.evaluate("img => img.naturalWidth") > 100  # a real, decodable picture
    assert page.locator('.jp-MedAgent-verdict[data-verdict="flag"]').count() >= 1  # the planted flip, caught
    assert page.locator('.jp-MedAgent-verdict[data-verdict="ok"]').count() >= 1  # and clean after the repair
    # The agent's cells are in the notebook, in order, with their outputs, marked as the agent's.
    cells = page.locator(".jp-Notebook .jp-CodeCell.jp-MedAgent-agentCell")
    written = page.locator('.jp-MedAgent-event[data-kind="cell_written"]').count()
    assert cells.count() == written >= 5
    assert page.locator(".jp-Notebook .jp-MedAgent-agentCell .jp-OutputArea-output").count() >= written - 1
    first_code = cells.first.locator(".jp-InputArea-editor").inner_text()
    assert "import" in first_code
    assert page.locator(".jp-Notebook .jp-MedAgent-agentCell .jp-RenderedImage img").count() >= 1
    assert page.locator(".jp-MedAgent-spend").inner_text() == "$0.0000 · 0 tokens"
    # Export opens the refined notebook, written next to the user's.
    page.click(".jp-MedAgent-export")
    page.wait_for_selector('.lm-TabBar-tab[title*="measure-medagent.ipynb"], '
                           '.lm-TabBar-tab:has-text("measure-medagent.ipynb")', timeout=30_000)
    assert (root / "measure-medagent.ipynb").exists()
    page.screenshot(path=str(ARTIFACTS / "3-refined-notebook.png"))


def test_stop_ends_a_training_run(page, lab):
    url, root = lab
    open_sidebar(page, url, "train.ipynb")
    start(page, SEGMENT)
    # Wait until the agent is into its work (a few cells ran), then stop it.
    page.wait_for_function("document.querySelectorAll('.jp-MedAgent-status[data-status]').length >= 3",
                           timeout=90_000)
    page.click(".jp-MedAgent-stop")
    page.wait_for_selector('.jp-MedAgent-finished[data-status="stopped"]', timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "4-stopped.png"), full_page=True)
    assert page.locator(".jp-MedAgent-sidebar").get_attribute("data-state") == "finished"
    assert page.locator(".jp-Notebook .jp-MedAgent-agentCell").count() >= 3  # the partial work stays
