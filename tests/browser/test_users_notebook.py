"""Issue 22 in headless Chromium: the notebook is the user's (a second run continues below the first after the
notebook is reopened; an approval edit steers the next repair, the notebook holds only what the user let run, the
provenance records it), a magic run a reloaded page cannot follow says so, and bad data is told plainly, once."""

from __future__ import annotations

import nbformat
import pytest

from .conftest import ARTIFACTS, kernel_ready, new_notebook
from .test_sidebar import MEASURE, open_sidebar, runs_of, start

pytestmark = pytest.mark.browser

SEGMENT = "Segment the LV, myocardium and RV."


def save(page):
    page.keyboard.press("Control+s")
    page.wait_for_timeout(1500)


def agent_runs(path):
    """The run id of each cell of the saved notebook (None for the user's own cells)."""
    return [c.metadata.get("medagent", {}).get("run_id") for c in nbformat.read(path, as_version=4).cells]


def test_a_second_run_after_reopening_continues_below_the_first(page, lab):
    url, root = lab
    new_notebook(root, "reopened.ipynb", ["x = 1  # the user's own cell"])
    open_sidebar(page, url, "reopened.ipynb")
    page.uncheck(".jp-MedAgent-verify")
    start(page, MEASURE)
    page.wait_for_selector('.jp-MedAgent-finished[data-status="solved"]', timeout=180_000)
    save(page)
    # Reopened: a fresh page, the cursor back on the first cell.
    open_sidebar(page, url, "reopened.ipynb")
    page.wait_for_selector('.jp-MedAgent-finished[data-status="solved"]', timeout=60_000)  # the first run, re-attached
    page.click(".jp-Notebook .jp-Cell >> nth=0")
    # The boxes show the run's settings (verification was off), not the defaults.
    assert not page.is_checked(".jp-MedAgent-verify") and page.input_value(".jp-MedAgent-data") == "data"
    page.click(".jp-MedAgent-start")
    page.wait_for_function("document.querySelectorAll('.jp-MedAgent-finished[data-status=\"solved\"]').length === 1 && "
                           "document.querySelector('.jp-MedAgent-sidebar').dataset.state === 'finished'", timeout=180_000)
    save(page)
    first, second = [r["run_id"] for r in runs_of(url, "reopened.ipynb")]
    runs = agent_runs(root / "reopened.ipynb")
    assert runs[0] is None  # the user's cell stays first
    assert max(i for i, r in enumerate(runs) if r == first) < min(i for i, r in enumerate(runs) if r == second)


def test_an_approval_edit_steers_the_next_repair_and_is_recorded(page, lab):
    url, root = lab
    new_notebook(root, "steer.ipynb")
    open_sidebar(page, url, "steer.ipynb")
    # A quality bar no short training meets: the evaluation misses it and the plan trains twice as long.
    page.evaluate("""() => { const s = document.querySelector('.jp-MedAgent-backend');
        const o = document.createElement('option'); o.value = 'offline:steps=40,dice_bar=0.99'; o.textContent = 'short';
        s.append(o); s.value = o.value; }""")
    page.check(".jp-MedAgent-approve-mode")
    page.uncheck(".jp-MedAgent-isolated")
    start(page, SEGMENT)
    approval = page.locator(".jp-MedAgent-approval")
    code = page.locator(".jp-MedAgent-approval-code")
    trainings = 0
    for _ in range(30):
        approval.wait_for(state="visible", timeout=180_000)
        source = code.input_value()
        if "model = UNet" in source:
            trainings += 1
            if trainings == 1:
                assert "STEPS = 40" in source
                code.fill(source.replace("STEPS = 40", "STEPS = 10"))
            else:
                # The repair doubles what the user ran, not what the plan had.
                assert "STEPS = 20" in source, source
                break
        page.click(".jp-MedAgent-approve-run")
        approval.wait_for(state="hidden", timeout=30_000)
    assert trainings == 2
    # The box is wide enough to read code in.
    assert code.bounding_box()["width"] >= 0.9 * approval.bounding_box()["width"]
    # Nothing the user has not approved is in the notebook: the train cell still holds the code the user ran.
    train = page.locator(".jp-Notebook .jp-MedAgent-agentCell", has_text="model = UNet")
    assert train.count() == 1 and "STEPS = 10" in train.locator(".jp-InputArea-editor").inner_text()
    assert "STEPS = 20" not in page.locator(".jp-Notebook").inner_text()
    assert "training length set to 10 steps by you" in page.locator(".jp-MedAgent-timeline").inner_text()
    page.screenshot(path=str(ARTIFACTS / "steer-approval.png"), full_page=True)
    page.click(".jp-MedAgent-approve-stop")
    page.wait_for_selector('.jp-MedAgent-finished[data-status="stopped"]', timeout=60_000)
    provenance = nbformat.read(root / "steer-medagent.ipynb", as_version=4).metadata["medagent"]
    train_id = next(c.metadata["medagent"]["id"] for c in nbformat.read(root / "steer-medagent.ipynb", as_version=4).cells
                    if c.cell_type == "code" and "model = UNet" in c.source)
    assert provenance["cells_edited_by_user"] == [train_id]
    assert any("training length set to 10 steps by you" in a for a in provenance["plan"]["adjustments"])


def test_a_magic_run_a_reloaded_page_cannot_follow_says_where_its_result_will_be(page, lab):
    url, root = lab
    new_notebook(root, "magic_reload.ipynb", ["%load_ext jupyter_medagent",
                                              f"%%medagent --data data --backend offline:steps=4000\n{SEGMENT}"])
    page.goto(f"{url}/lab/tree/magic_reload.ipynb?reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    kernel = kernel_ready(url, "magic_reload.ipynb")
    page.click(".jp-Notebook .jp-Cell >> nth=0")
    page.keyboard.press("Shift+Enter")
    page.keyboard.press("Shift+Enter")
    page.wait_for_selector(".jp-Notebook .jp-MedAgent-agentCell", timeout=120_000)
    save(page)
    page.reload()
    note = page.locator(".jp-MedAgent-runOutput .jp-MedAgent-unfollowed")
    note.wait_for(timeout=60_000)
    text = note.inner_text()
    assert "still going on in the kernel" in text and "magic_reload-medagent.ipynb" in text
    page.screenshot(path=str(ARTIFACTS / "magic-reloaded.png"), full_page=True)
    # The long training ends now (the kernel's stop button), not with the module's server.
    page.click('.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]')
    page.wait_for_function(f"fetch('/api/kernels/{kernel}').then(r => r.json()).then(k => k.execution_state === 'idle')",
                           timeout=60_000, polling=1000)


@pytest.mark.parametrize("folder, expected", [("readme_only", "no images found"),
                                              ("text_named_gz", "named .gz but is not gzip-compressed")])
def test_bad_data_is_told_plainly_once(page, lab, folder, expected):
    url, root = lab
    data = root / folder
    if folder == "readme_only":
        data.mkdir()
        (data / "README.md").write_text("Scans to follow.\n")
    else:
        for sub in ("imagesTr", "labelsTr"):
            (data / sub).mkdir(parents=True)
        (data / "imagesTr" / "case_001_0000.nii.gz").write_text("not an image\n")
        (data / "labelsTr" / "case_001.nii.gz").write_text("not a label\n")
    name = f"bad_{folder}.ipynb"
    new_notebook(root, name)
    open_sidebar(page, url, name)
    page.fill(".jp-MedAgent-request", SEGMENT)
    page.fill(".jp-MedAgent-data", folder)
    page.click(".jp-MedAgent-start")
    page.wait_for_selector('.jp-MedAgent-finished[data-status="failed"]', timeout=120_000)
    said = page.locator(".jp-MedAgent-timeline").inner_text()
    assert said.count(expected) == 1, said
    assert "untrusted-data" not in said and "has no label maps" not in said
    if folder == "text_named_gz":
        assert "case_001_0000.nii.gz" in said
