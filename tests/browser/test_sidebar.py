"""End to end in headless Chromium: the MedAgent sidebar drives the offline agent in the open notebook."""

from __future__ import annotations

import json
import os
import re
import urllib.request

import nbformat
import pytest

from .conftest import ARTIFACTS, kernel_ready, new_notebook

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
    cells.first.scroll_into_view_if_needed()
    cells.first.locator(".jp-InputArea-editor", has_text="import").wait_for(timeout=10_000)
    assert page.locator(".jp-Notebook .jp-MedAgent-agentCell .jp-RenderedImage img").count() >= 1
    assert page.locator(".jp-MedAgent-spend").inner_text() == "$0.0000 · 0 tokens"
    # The answer the user asked for, first: EF of every patient, not "cases_measured 22.000".
    finished = page.locator(".jp-MedAgent-finished")
    captions = page.locator(".jp-MedAgent-headline caption").all_inner_texts()
    assert "Ejection fraction per patient" in captions
    ef_table = page.locator(".jp-MedAgent-headline", has=page.locator("caption", has_text="Ejection fraction"))
    assert ef_table.locator("tr").count() - 1 == 4  # all four patients
    assert not finished.locator("details.jp-MedAgent-all-measures").get_attribute("open")
    assert "cases_measured" not in finished.inner_text()  # folded away under "All measures"
    # The per-patient table renders as a table in the live notebook.
    assert page.locator(".jp-Notebook .jp-MedAgent-agentCell .jp-RenderedMarkdown table th",
                        has_text="EF (%)").count() >= 1
    # The notebook followed the agent: its newest cell is the active one.
    active = page.locator(".jp-Notebook .jp-Cell.jp-mod-active")
    assert "jp-MedAgent-agentCell" in active.get_attribute("class")
    assert active.locator(".jp-InputArea-editor").inner_text() == cells.last.locator(".jp-InputArea-editor").inner_text()
    # Export opens the refined notebook, written next to the user's: unmodified, readable by the group as any
    # new file, the data folder relative to it.
    page.click(".jp-MedAgent-export")
    tab = page.locator('.lm-TabBar-tab:has-text("measure-medagent.ipynb")')
    tab.wait_for(timeout=30_000)
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell", timeout=30_000)
    page.wait_for_timeout(1500)
    assert "jp-mod-dirty" not in tab.get_attribute("class")
    refined = root / "measure-medagent.ipynb"
    umask = os.umask(0)
    os.umask(umask)
    assert refined.stat().st_mode & 0o777 == 0o666 & ~umask
    setup = next(c.source for c in nbformat.read(refined, as_version=4).cells if c.cell_type == "code")
    assert "DATA = HERE / 'data'" in setup and str(root) not in setup
    page.screenshot(path=str(ARTIFACTS / "3-refined-notebook.png"))


def test_buttons_and_badges_are_readable_in_the_dark_theme(page, lab):
    url, _ = lab
    open_sidebar(page, url, "measure.ipynb")
    use_theme(page, "JupyterLab Dark")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
    # A disabled button looks disabled.
    assert float(page.locator(".jp-MedAgent-stop").evaluate("b => getComputedStyle(b).opacity")) < 0.6
    assert float(page.locator(".jp-MedAgent-start").evaluate("b => getComputedStyle(b).opacity")) == 1.0
    # Verdict badges: text against its background at WCAG AA contrast, in the dark theme.
    contrast = page.evaluate("""() => {
        const lum = c => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(v => v / 255)
            .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        return ['ok', 'flag', 'not_checked'].map(v => {
            const badge = document.createElement('span');
            badge.className = 'jp-MedAgent-verdict'; badge.dataset.verdict = v; badge.textContent = v;
            document.querySelector('.jp-MedAgent-timeline').append(badge);
            const s = getComputedStyle(badge); const [a, b] = [lum(s.color), lum(s.backgroundColor)];
            badge.remove();
            return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        });
    }""")
    assert min(contrast) >= 4.5, contrast
    use_theme(page, "JupyterLab Light")
    page.wait_for_function("document.body.dataset.jpThemeLight === 'true'", timeout=30_000)


def use_theme(page, name):
    page.click('.lm-MenuBar-itemLabel:text-is("Settings")')
    page.click('.lm-Menu-itemLabel:text-is("Theme")')
    page.click(f'.lm-Menu-itemLabel:text-is("{name}")')


def test_training_shows_live_progress_and_stop_ends_it(page, lab):
    url, root = lab
    open_sidebar(page, url, "train.ipynb")
    start(page, SEGMENT)
    # While the training cell runs: a progress bar in the sidebar that moves, and the cell's output in the
    # notebook (a tqdm-style line with step x of N, elapsed and ETA) before the cell has finished.
    bar = page.locator('.jp-MedAgent-progress[data-what="training"] progress')
    bar.wait_for(timeout=180_000)
    page.wait_for_function("""() => { const b = document.querySelector('.jp-MedAgent-progress[data-what="training"] progress');
        return b && b.value > 0 && b.value < b.max; }""", timeout=60_000)
    first = bar.evaluate("b => b.value")
    running = page.locator(".jp-Notebook .jp-MedAgent-agentCell.jp-MedAgent-runningCell")
    assert running.count() == 1
    line = running.locator(".jp-OutputArea-output").first.inner_text()
    assert re.search(r"training: +\d+%\|.*\| \d+/\d+ \[\d\d:\d\d<\d\d:\d\d", line), line  # tqdm's [elapsed<remaining]
    assert "about" in page.locator('.jp-MedAgent-progress[data-what="training"]').inner_text()  # the ETA
    page.wait_for_function(f"document.querySelector('.jp-MedAgent-progress[data-what=\"training\"] progress').value > {first}",
                           timeout=60_000)
    # The timeline scrolls on its own; Stop stays on screen.
    assert page.locator(".jp-MedAgent-sidebar").evaluate("s => s.scrollTop") == 0
    stop = page.locator(".jp-MedAgent-stop").bounding_box()
    assert stop["y"] >= 0 and stop["y"] + stop["height"] <= 950
    page.screenshot(path=str(ARTIFACTS / "4-training-progress.png"))
    page.click(".jp-MedAgent-stop")
    page.wait_for_selector('.jp-MedAgent-finished[data-status="stopped"]', timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "5-stopped.png"), full_page=True)
    assert page.locator(".jp-MedAgent-sidebar").get_attribute("data-state") == "finished"
    assert page.locator(".jp-Notebook .jp-MedAgent-agentCell").count() >= 3  # the partial work stays


def test_a_skipped_check_is_marked_and_not_judged_ok(page, lab):
    url, root = lab
    new_notebook(root, "approve.ipynb")
    open_sidebar(page, url, "approve.ipynb")
    page.check(".jp-MedAgent-approve-mode")
    start(page, MEASURE)
    approval = page.locator(".jp-MedAgent-approval")
    # Run the set-up and the data card, skip the quality checks.
    for decision in ("run", "run", "skip"):
        approval.wait_for(state="visible", timeout=60_000)
        if decision == "skip":
            assert "check_dataset" in page.locator(".jp-MedAgent-approval-code").input_value()
        page.click(f".jp-MedAgent-approve-{decision}")
        page.wait_for_timeout(300)
    badge = page.locator(".jp-MedAgent-verdict").first
    badge.wait_for(timeout=60_000)
    assert badge.get_attribute("data-verdict") == "not_checked" and badge.inner_text() == "not checked"
    assert "confidence" not in page.locator('.jp-MedAgent-event[data-kind="verdict"]').first.inner_text()
    skipped = page.locator(".jp-Notebook .jp-MedAgent-agentCell.jp-MedAgent-skippedCell")
    assert skipped.count() == 1 and "not run" in skipped.locator(".jp-OutputArea-output").inner_text()
    assert page.locator('.jp-MedAgent-status[data-status="skipped"]').count() == 1
    page.screenshot(path=str(ARTIFACTS / "6-skipped-check.png"), full_page=True)
    page.click(".jp-MedAgent-stop")
    page.wait_for_selector('.jp-MedAgent-finished[data-status="stopped"]', timeout=60_000)
    partial = nbformat.read(root / "approve-medagent.ipynb", as_version=4)
    assert partial.metadata["medagent"]["cells_skipped_by_user"] == ["c3"]


def runs_of(url, notebook):
    return json.load(urllib.request.urlopen(f"{url}/medagent/runs?notebook_path={notebook}"))["runs"]


def test_double_start_reload_and_a_second_run(page, lab):
    url, root = lab
    new_notebook(root, "again.ipynb")
    open_sidebar(page, url, "again.ipynb")
    page.fill(".jp-MedAgent-request", MEASURE)
    page.fill(".jp-MedAgent-data", "data")
    page.dblclick(".jp-MedAgent-start")
    page.wait_for_selector('.jp-MedAgent-status[data-status="ok"]', timeout=60_000)
    assert len(runs_of(url, "again.ipynb")) == 1  # one run, however many clicks
    assert page.locator(".jp-MedAgent-sidebar").get_attribute("data-state") == "running"
    assert page.locator(".jp-MedAgent-stop").is_enabled()
    # A reload while it works: the sidebar finds the run again and follows it to the end.
    page.reload()
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_timeout(2000)  # the restored layout may already show the sidebar
    if not page.locator("#jupyter-medagent\\:sidebar").is_visible():
        page.click('.jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id="jupyter-medagent:sidebar"]')
    page.wait_for_selector('.jp-MedAgent-finished[data-status="solved"]', timeout=120_000)
    assert page.locator(".jp-MedAgent-request").input_value() == MEASURE
    written = page.locator('.jp-MedAgent-event[data-kind="cell_written"]').count()
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)
    first_run = nbformat.read(root / "again.ipynb", as_version=4)
    first_ids = [i for i, c in enumerate(first_run.cells) if c.metadata.get("medagent", {}).get("written_by") == "agent"]
    assert len(first_ids) == written  # every cell, also those written before the reload
    # A second run continues below the first one's cells and writes a new refined notebook beside the first.
    page.click(".jp-MedAgent-start")
    page.wait_for_selector('.jp-MedAgent-finished[data-status="solved"]', timeout=120_000)
    page.wait_for_function("document.querySelectorAll('.jp-MedAgent-finished').length === 1")
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)
    both = nbformat.read(root / "again.ipynb", as_version=4)
    runs = [c.metadata.get("medagent", {}).get("run_id") for c in both.cells]
    first, second = runs_of(url, "again.ipynb")[0]["run_id"], runs_of(url, "again.ipynb")[1]["run_id"]
    assert max(i for i, r in enumerate(runs) if r == first) < min(i for i, r in enumerate(runs) if r == second)
    assert (root / "again-medagent.ipynb").exists() and (root / "again-medagent-1.ipynb").exists()


def test_the_run_options_are_saved_in_the_settings_and_a_run_gets_them(page, lab):
    """The form shows every option of the settings schema (the sidebar's own backend and verify switches aside); what
    the user chooses there is saved, shown again after a reload, and is what the run gets."""
    from jupyter_medagent.contracts.options import fields

    url, root = lab
    new_notebook(root, "options.ipynb")
    open_sidebar(page, url, "options.ipynb")
    page.click(".jp-MedAgent-options > summary")
    page.wait_for_selector('.jp-MedAgent-option[data-option="max_steps"]')
    shown = page.locator(".jp-MedAgent-option").evaluate_all("fields => fields.map(f => f.dataset.option)")
    assert sorted(shown + ["backend", "verify"]) == sorted(spec.name for spec in fields())
    option = '.jp-MedAgent-option[data-option="{}"]'.format
    page.fill(option("max_steps"), "40")
    page.keyboard.press("Tab")  # a text field's change is sent when it loses focus
    page.fill(option("accept"), "dice_mean>=0.5, ef_abs_error<=9")
    page.keyboard.press("Tab")
    page.select_option(option("skills"), "reference")
    page.select_option(option("on_kernel_death"), "restart")
    page.uncheck(".jp-MedAgent-verify")
    chosen = {"max_steps": 40, "accept": ["dice_mean>=0.5", "ef_abs_error<=9"], "skills": "reference",
              "on_kernel_death": "restart", "verify": False}
    saved = root / ".user-settings" / "jupyter-medagent" / "plugin.jupyterlab-settings"
    for _ in range(50):  # each change is saved on its own request
        if saved.exists() and json.loads(re.sub(r"^\s*//.*$", "", saved.read_text(), flags=re.M)) == chosen:
            break
        page.wait_for_timeout(200)
    assert json.loads(re.sub(r"^\s*//.*$", "", saved.read_text(), flags=re.M)) == chosen
    page.reload()
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_timeout(2000)  # the restored layout may already show the sidebar
    if not page.locator("#jupyter-medagent\\:sidebar").is_visible():
        page.click('.jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id="jupyter-medagent:sidebar"]')
    page.wait_for_function(f"document.querySelector('{option('max_steps')}')?.value === '40'", timeout=30_000)
    assert page.locator(option("skills")).input_value() == "reference"
    assert not page.locator(".jp-MedAgent-verify").is_checked()
    start(page, MEASURE)
    page.wait_for_selector('.jp-MedAgent-sidebar[data-run-id]', timeout=15_000)
    run = runs_of(url, "options.ipynb")[-1]
    assert {name: run["options"][name] for name in chosen} == chosen
    assert run["options"]["isolation"] == "auto" and run["options"]["max_cost"] is None  # the rest: the defaults
    if page.locator(".jp-MedAgent-stop").is_enabled():
        page.click(".jp-MedAgent-stop")
    page.wait_for_selector(".jp-MedAgent-finished", timeout=60_000)
