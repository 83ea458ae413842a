import json
import threading
import time

import nbformat
import pytest

from jupyter_medagent.contracts.budget import Budget
from jupyter_medagent.agent.loop import Agent
from jupyter_medagent.agent.protocols import ModelTurn, ToolCall
from jupyter_medagent.contracts.mime import FINDINGS_MIME, METRICS_MIME
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.notebook.refine import is_guard_cell

from .conftest import ScriptedBackend, call, priced

METRICS_CELL = ("from IPython.display import display\n"
                f"display({{'text/plain': 'm', '{METRICS_MIME}': {{'dice_mean': DICE}}}}, raw=True)")
FINDING = {"case": "p1", "kind": "orientation_flip", "severity": "error", "message": "label flipped", "evidence": {}}


def run(agent):
    events = list(agent.run())
    assert events[-1].kind == "finished"
    return events, events[-1]


def kinds(events):
    return [e.kind for e in events]


def make(tmp_path, executor, turns, acceptance=None, **kwargs):
    backend = ScriptedBackend(turns)
    task = Task("compute something", None, str(tmp_path), acceptance or {})
    return Agent(task, backend, executor, notebook_path=tmp_path / "out.ipynb", **kwargs), backend


def code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" and not is_guard_cell(c)]


def test_error_is_repaired_in_place_and_notebook_reruns(tmp_path, executor):
    agent, backend = make(tmp_path, executor, [
        call("add_cell", source="value = 1 / 0", note="Divide."),
        lambda view: call("edit_cell", cell_id=view.cells[-1]["id"], source="value = 1 / 4", note="Divide safely."),
        call("add_cell", source=METRICS_CELL.replace("DICE", "0.93"), note="Report."),
        call("finish", status="solved", summary="done"),
    ], acceptance={"dice_mean": [">=", 0.9]})
    events, finished = run(agent)
    assert finished.status == "solved" and finished.reexecuted_ok is True
    executed = [e for e in events if e.kind == "cell_executed"]
    assert executed[0].error["ename"] == "ZeroDivisionError" and executed[1].error is None
    assert "\x1b[" not in "".join(executed[0].error["traceback"])
    # The backend saw the error before choosing its repair.
    assert backend.views[1].history[-1].observation.is_error
    cells = code_cells(tmp_path / "out.ipynb")
    assert [c.source for c in cells] == ["value = 1 / 4", METRICS_CELL.replace("DICE", "0.93")]
    meta = nbformat.read(tmp_path / "out.ipynb", as_version=4).metadata["medagent"]
    assert meta["status"] == "solved" and meta["cell_errors"] == 1 and meta["reexecuted_ok"] is True
    assert finished.metrics == {"dice_mean": 0.93}


def test_quality_bar_not_met_downgrades_a_solved_claim(tmp_path, executor):
    agent, _ = make(tmp_path, executor, [
        call("add_cell", source=METRICS_CELL.replace("DICE", "0.71"), note="Report."),
        call("finish", status="solved", summary="looks fine"),
    ], acceptance={"dice_mean": [">=", 0.9], "ef_abs_error": ["<=", 3.0]})
    _, finished = run(agent)
    assert finished.status == "failed"
    assert "dice_mean = 0.71, needed >= 0.9" in finished.reason and "ef_abs_error was not measured" in finished.reason


def test_judge_flag_then_fix(tmp_path, executor):
    flagged = (f"from IPython.display import display\ndisplay({{'text/plain': 'f', '{FINDINGS_MIME}': "
               f"{{'findings': [{FINDING!r}]}}}}, raw=True)")
    clean = f"from IPython.display import display\ndisplay({{'text/plain': 'f', '{FINDINGS_MIME}': {{'findings': []}}}}, raw=True)"
    agent, backend = make(tmp_path, executor, [
        call("add_cell", source=flagged, note="Check."),
        call("judge"),
        lambda view: call("edit_cell", cell_id="c1", source=clean, note="Check after the fix."),
        call("judge"),
        call("finish", status="solved", summary="fixed"),
    ])
    events, finished = run(agent)
    verdicts = [e for e in events if e.kind == "verdict"]
    assert [v.verdict for v in verdicts] == ["flag", "ok"]
    assert verdicts[0].findings == [FINDING]
    assert "orientation_flip" in backend.views[2].history[-1].observation.text
    assert finished.status == "solved"


def test_render_events_carry_png(tmp_path, executor):
    agent, backend = make(tmp_path, executor, [
        call("render", image="__import__('numpy').random.rand(32, 32, 32)", title="noise"),
        call("finish", status="failed", summary="only looking"),
    ], reexecute=False)
    events, _ = run(agent)
    renders = [e for e in events if e.kind == "render"]
    assert len(renders) == 1 and renders[0].png.startswith(b"\x89PNG")
    assert backend.views[1].history[-1].observation.images == [renders[0].png]


@pytest.mark.parametrize("budget, turns, expected", [
    (Budget(max_steps=2), [call("add_cell", source="1", note="n")] * 5, "step budget spent"),
    (Budget(max_tokens=2500), [priced(call("add_cell", source="1", note="n"))] * 5, "token budget spent"),
    (Budget(max_cost_usd=0.025), [priced(call("add_cell", source="1", note="n"))] * 5, "money budget spent"),
    (Budget(max_seconds=1.0), [call("add_cell", source="import time; time.sleep(1.2)", note="n")] * 5, "time budget spent"),
])
def test_budgets_stop_the_run_cleanly(tmp_path, executor, budget, turns, expected):
    agent, _ = make(tmp_path, executor, turns, budget=budget)
    events, finished = run(agent)
    assert finished.status == "failed" and expected in finished.reason
    if "token" in expected or "money" in expected:
        usage = [e for e in events if e.kind == "usage"]
        assert usage[-1].total_cost_usd == pytest.approx(0.01 * len(usage))


def test_stop_interrupts_a_long_cell_and_keeps_a_partial_notebook(tmp_path, executor):
    agent, _ = make(tmp_path, executor, [
        call("add_cell", source="x = 41", note="Before."),
        call("add_cell", source="import time\ntime.sleep(60)", note="Long training."),
        call("finish", status="solved", summary="never reached"),
    ])
    threading.Timer(2.0, agent.stop).start()
    started = time.monotonic()
    events, finished = run(agent)
    assert time.monotonic() - started < 15
    assert finished.status == "stopped"
    interrupted = [e for e in events if e.kind == "cell_executed"][-1]
    assert interrupted.error["ename"] == "KeyboardInterrupt"
    partial = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert partial.metadata["medagent"]["status"] == "stopped"
    assert "x = 41" in [c.source for c in partial.cells if c.cell_type == "code"]


def test_malformed_replies_are_explained_then_end_the_run(tmp_path, executor):
    agent, backend = make(tmp_path, executor, [
        call("delete_everything"),
        ToolCall("add_cell", {"__parse_error__": "{source: oops"}),
        call("add_cell", note="no source"),
    ])
    _, finished = run(agent)
    assert finished.status == "failed" and "malformed 3 times" in finished.reason
    told = [s.observation.text for s in backend.views[-1].history]
    assert "unknown tool 'delete_everything'" in told[0]
    assert "not valid JSON" in told[1]
    told_last = agent.history[-1].observation.text
    assert "missing required argument(s): source" in told_last


def test_chatter_without_tool_calls_ends_the_run(tmp_path, executor):
    agent, _ = make(tmp_path, executor, [ModelTurn(text="Let me think...")] * 4)
    _, finished = run(agent)
    assert finished.status == "failed" and "no tool call" in finished.reason


def test_backend_exception_ends_cleanly(tmp_path, executor):
    def explode(view):
        raise ConnectionError("server went away")

    agent, _ = make(tmp_path, executor, [explode])
    _, finished = run(agent)
    assert finished.status == "failed" and "ConnectionError: server went away" in finished.reason


def test_approval_skip_edit_and_stop(tmp_path, executor):
    decisions = iter([("skip", ""), ("edit", "y = 2"), ("stop", "")])
    agent, _ = make(tmp_path, executor, [
        call("add_cell", source="import os", note="Skipped."),
        call("add_cell", source="y = 1", note="Edited."),
        call("add_cell", source="z = 3", note="Stopped here."),
    ], approver=lambda cell_id, source, concerns: next(decisions))
    events, finished = run(agent)
    assert finished.status == "stopped"
    assert kinds(events).count("approval_request") == 3
    # What the user did is said in the events, the notebook and its provenance.
    assert [e.cell_id for e in events if e.kind == "cell_skipped"] == ["c1"]
    assert [e.cell_id for e in events if e.kind == "cell_written" and e.by_user] == ["c2"]
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    skipped_note = next(c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("Skipped."))
    assert "Skipped by you: this cell was not run" in skipped_note and "import os" in skipped_note
    assert [c.source for c in code_cells(tmp_path / "out.ipynb")][:1] == ["y = 2"]  # the skipped cell cannot run
    edited = next(c for c in nb.cells if c.cell_type == "code" and c.source == "y = 2")
    assert edited.metadata["medagent"]["edited_by_user"] is True
    assert nb.metadata["medagent"]["cells_skipped_by_user"] == ["c1"]
    assert nb.metadata["medagent"]["cells_edited_by_user"] == ["c2"]
    assert executor.execute("print(y)").outputs[0]["text"] == "2\n"


def test_safety_refusal_is_explained_and_nothing_runs(tmp_path, executor):
    refuse = lambda code: ["shell commands are not allowed"] if "os.system" in code else []  # noqa: E731
    agent, backend = make(tmp_path, executor, [
        call("add_cell", source="import os\nos.system('touch hacked')", note="Bad."),
        call("finish", status="failed", summary="refused"),
    ], safety=refuse)
    run(agent)
    assert "shell commands are not allowed" in backend.views[1].history[-1].observation.text
    assert not (tmp_path / "hacked").exists()


def test_a_users_notebook_is_never_overwritten(tmp_path, executor):
    mine = tmp_path / "out.ipynb"
    mine.write_text(json.dumps(nbformat.v4.new_notebook()))
    before = mine.read_text()
    agent, _ = make(tmp_path, executor, [call("add_cell", source="1", note="n"), call("finish", status="failed", summary="x")])
    events, finished = run(agent)
    assert mine.read_text() == before
    assert finished.notebook.endswith("out-1.ipynb")
    assert any("already exists" in getattr(e, "text", "") for e in events)


def test_list_variables_and_unknown_cell(tmp_path, executor):
    agent, backend = make(tmp_path, executor, [
        call("add_cell", source="import numpy as np\narr = np.zeros((2, 3))", note="Make."),
        call("list_variables"),
        call("run_cell", cell_id="c99"),
        call("finish", status="failed", summary="x"),
    ], reexecute=False)
    run(agent)
    steps = backend.views[-1].history
    assert steps[1].observation.data["variables"] == [{"name": "arr", "type": "ndarray", "shape": [2, 3], "dtype": "float64"}]
    assert "no cell with id 'c99'" in steps[2].observation.text


def test_an_earlier_refined_notebook_is_never_replaced(tmp_path, executor):
    """A second run (here a stopped one) writes next to a solved notebook, never over it."""
    first, _ = make(tmp_path, executor, [call("add_cell", source="x = 1", note="n"),
                                         call("finish", status="solved", summary="solved")])
    _, solved = run(first)
    before = (tmp_path / "out.ipynb").read_text()
    second, _ = make(tmp_path, executor, [call("add_cell", source="y = 1", note="n")])
    second.stop()
    _, stopped = run(second)
    assert solved.notebook.endswith("out.ipynb") and (tmp_path / "out.ipynb").read_text() == before
    assert stopped.notebook is None or stopped.notebook.endswith("out-1.ipynb")


def test_the_notebook_gets_the_mode_the_umask_gives_and_no_temporary_files(tmp_path, executor):
    import os

    previous = os.umask(0o027)
    try:
        agent, _ = make(tmp_path, executor, [call("add_cell", source="x = 1", note="n"),
                                             call("finish", status="solved", summary="done")])
        _, finished = run(agent)
    finally:
        os.umask(previous)
    assert os.stat(finished.notebook).st_mode & 0o777 == 0o640
    assert not list(tmp_path.glob(".medagent-*"))


def test_outputs_stream_while_a_cell_runs_and_training_reports_progress(tmp_path, executor):
    source = ("import time\nfrom jupyter_medagent.pipelines.progress import LoopProgress\n"
              "progress = LoopProgress(6, 'training', every_s=0)\n"
              "for step in range(1, 7):\n    print(f'step {step}', flush=True)\n    time.sleep(0.4)\n"
              "    progress.update(step, loss=1 / step)\n")
    agent, _ = make(tmp_path, executor, [call("add_cell", source=source, note="Train."),
                                         call("finish", status="failed", summary="x")], reexecute=False)
    events, _ = run(agent)
    executed = kinds(events).index("cell_executed")
    live = [e for e in events[:executed] if e.kind == "cell_output"]
    assert len(live) >= 3  # several snapshots before the cell ended, each with more of its output
    printed = ["".join(o.get("text", "") for o in e.outputs) for e in live]
    assert any("step 2" in p and "step 6" not in p for p in printed)
    progress = [e for e in events[:executed] if e.kind == "progress"]
    assert [p.done for p in progress][-1] == 6 and progress[-1].total == 6 and progress[0].done < 6
    assert "6/6" in progress[-1].text and progress[-1].cell_id == "c1"
    assert progress[1].eta_s is not None and progress[1].elapsed_s > 0
    # In the notebook the progress line was updated in place: one output, at its final state.
    final = events[executed].outputs
    lines = [o for o in final if "text/plain" in o.get("data", {})]
    assert len(lines) == 1 and "6/6" in lines[0]["data"]["text/plain"]


def test_a_judge_without_evidence_says_not_checked(tmp_path, executor):
    """The user skipped the checking cell: the judge has nothing to go on and must not say ok."""
    decisions = iter([("skip", "")])
    agent, backend = make(tmp_path, executor, [
        call("add_cell", source=f"from IPython.display import display\ndisplay({{'text/plain': 'f', "
                                f"'{FINDINGS_MIME}': {{'findings': [{FINDING!r}]}}}}, raw=True)", note="Check the data."),
        call("judge", context="raw data"),
        call("finish", status="failed", summary="x"),
    ], approver=lambda cell_id, source, concerns: next(decisions))
    events, _ = run(agent)
    verdicts = [e for e in events if e.kind == "verdict"]
    assert [(v.judge, v.verdict) for v in verdicts] == [("panel", "not_checked")]
    assert "skipped" in verdicts[0].reason
    assert backend.views[2].history[-1].observation.text.startswith("Verdict: not checked")
    provenance = nbformat.read(tmp_path / "out.ipynb", as_version=4).metadata["medagent"]
    assert provenance["verdicts"][0]["verdict"] == "not_checked"


def test_results_come_before_verification_which_shows_its_progress(tmp_path, executor):
    agent, _ = make(tmp_path, executor, [call("add_cell", source=METRICS_CELL.replace("DICE", "0.93"), note="Measure."),
                                         call("add_cell", source="y = 2", note="More."),
                                         call("finish", status="solved", summary="done")])
    events, finished = run(agent)
    order = kinds(events)
    assert order.index("results") < order.index("progress") < order.index("finished")
    results = events[order.index("results")]
    assert results.headline == [{"title": "Quality", "columns": ["measure", "value"],
                                 "rows": [["mean Dice (held-out)", "0.930"]]}]
    progress = [e for e in events if e.kind == "progress" and e.what == "verification"]
    assert [p.done for p in progress] == [1, 2] and progress[-1].total == 2
    assert finished.verified == "yes" and finished.headline == results.headline


def test_without_verification_the_notebook_says_not_verified(tmp_path, executor):
    agent, _ = make(tmp_path, executor, [call("add_cell", source="x = 1", note="n"),
                                         call("finish", status="solved", summary="done")], reexecute=False)
    events, finished = run(agent)
    assert finished.verified == "skipped" and "progress" not in kinds(events)
    nb = nbformat.read(finished.notebook, as_version=4)
    assert "Not verified" in nb.cells[-1].source and nb.metadata["medagent"]["verified"] == "skipped"


def test_an_interrupt_during_verification_kills_the_rerun_at_once(tmp_path, executor):
    """The magic's Interrupt button raises KeyboardInterrupt in the loop while the verification re-run (which
    retrains) goes on in a worker thread: the run must end now, not when the re-run would have ended."""
    marker = tmp_path / "ran_once"
    slow_on_rerun = f"import time\nfrom pathlib import Path\ntime.sleep(60 if Path({str(marker)!r}).exists() else 0)\n" \
                    f"Path({str(marker)!r}).touch()"
    agent, _ = make(tmp_path, executor, [call("add_cell", source="x = 1", note="Quick."),
                                         call("add_cell", source=slow_on_rerun, note="Slow when re-run."),
                                         call("finish", status="solved", summary="done")])
    events = agent.run()
    for event in events:
        if event.kind == "progress" and event.what == "verification":
            break  # the first cell re-ran; the second sleeps
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        events.throw(KeyboardInterrupt)
    assert time.monotonic() - started < 20 and agent.stopped


def test_the_headline_shows_what_a_model_backend_reports():
    from jupyter_medagent.notebook.headline import headline

    tables = headline({"ef_percent": {"p2": 48.04, "p1": 61.0}, "volumes_ml": {"p1": {"LV": 120.0, 3: 80.25}}})
    ef, volumes = tables
    assert ef["rows"] == [["p1", "61.0", "the analysis's cells"], ["p2", "48.0", "the analysis's cells"]]
    assert volumes["columns"] == ["case", "3", "LV"] and volumes["rows"] == [["p1", "80.2", "120.0"]]


# A cell whose numbers depend on how often it ran in this kernel: re-run by the agent it reports a Dice the
# notebook, run once from the top, does not give.
DRIFTING = ("RUNS = globals().get('RUNS', 0) + 1\n"
            "from IPython.display import display\n"
            f"display({{'text/plain': 'm', '{METRICS_MIME}': {{'dice_LV': 0.80 + 0.05 * RUNS, 'ef_abs_error': 1.2 * RUNS}}}}, raw=True)")


def test_a_rerun_that_gives_other_numbers_is_not_reproduced_and_not_solved(tmp_path, executor):
    agent, _ = make(tmp_path, executor, [
        call("add_cell", source=DRIFTING, note="Measure."),
        lambda view: call("run_cell", cell_id=view.cells[-1]["id"]),
        call("finish", status="solved", summary="done")])
    events, finished = run(agent)
    results = next(e for e in events if e.kind == "results")
    assert results.metrics["dice_LV"] == pytest.approx(0.90)
    assert finished.status == "failed" and finished.verified == "not reproduced" and finished.reexecuted_ok is True
    assert "did not reproduce its reported numbers" in finished.reason
    assert "Dice LV 0.900 reported, 0.850 on the re-run" in finished.reason and "EF error (points) 2.40" in finished.reason
    nb = nbformat.read(finished.notebook, as_version=4)
    text = nb.cells[-1].source
    assert text.startswith("## Results") and "**Not reproduced:**" in text
    assert "| Dice LV | 0.900 | 0.850 | **no** |" in text and "| EF error (points) | 2.40 | 1.20 | **no** |" in text
    provenance = nb.metadata["medagent"]
    assert provenance["status"] == "failed" and provenance["verified"] == "not reproduced"
    assert provenance["reproduction"]["reproduced"] is False


def test_a_rerun_that_gives_the_reported_numbers_says_reproduced(tmp_path, executor):
    agent, _ = make(tmp_path, executor, [call("add_cell", source=DRIFTING, note="Measure."),
                                         call("finish", status="solved", summary="done")])
    _, finished = run(agent)
    assert finished.status == "solved" and finished.verified == "yes"
    nb = nbformat.read(finished.notebook, as_version=4)
    assert "**Reproduced:**" in nb.cells[-1].source and "| Dice LV | 0.850 | 0.850 | yes |" in nb.cells[-1].source
    assert nb.metadata["medagent"]["reproduction"]["reproduced"] is True


def test_reproduction_compares_headline_numbers_within_the_stated_tolerance():
    from jupyter_medagent.notebook.reproduce import compare

    reported = {"dice_LV": 0.923, "dice_mean": 0.90, "ef_predicted": {"patient005": 69.2}, "training_seconds": 50.0,
                "volumes_ml": {"p1": {"LV": 120.0}}, "patients_reported": 8}
    close = {"dice_LV": 0.928, "dice_mean": 0.905, "ef_predicted": {"patient005": 69.9}, "training_seconds": 80.0,
             "volumes_ml": {"p1": {"LV": 122.0}}, "patients_reported": 8}
    assert compare(reported, close).reproduced  # timings are no headline number; 2 mL of 120 is within 2 %
    far = compare(reported, {**close, "ef_predicted": {"patient005": 62.3}, "patients_reported": 7})
    assert [r.label for r in far.mismatches] == ["EF patient005 (%, network)", "patients reported"]
    missing = compare(reported, {k: v for k, v in close.items() if k != "dice_LV"})
    assert [(r.label, r.rerun) for r in missing.mismatches] == [("Dice LV", "not reported")]


def test_an_edit_the_agent_later_rewrites_stays_in_the_provenance(tmp_path, executor):
    """The user's edit is recorded even after a repair replaced the cell, and the backend saw what the user ran."""
    decisions = iter([("edit", "STEPS = 30"), ("run", "")])
    agent, backend = make(tmp_path, executor, [
        call("add_cell", source="STEPS = 450", note="Train."),
        lambda view: call("edit_cell", cell_id="c1", source="STEPS = 60", note="Train longer."),
        call("finish", status="solved", summary="done"),
    ], approver=lambda cell_id, source, concerns: next(decisions), reexecute=False)
    run(agent)
    seen = backend.views[1].history[-1].observation.data
    assert seen["edited_by_user"] is True and seen["source"] == "STEPS = 30"
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert nb.metadata["medagent"]["cells_edited_by_user"] == ["c1"]
    assert "You edited an earlier version of this cell" in next(c.source for c in nb.cells if c.source.startswith("Train longer."))


def test_a_skipped_montage_makes_the_next_verdict_not_checked_rather_than_ok(tmp_path, executor):
    """The checks found nothing, but the user skipped the montage: the verdict cannot be "ok"."""
    decisions = iter([("run", ""), ("skip", "")])
    agent, backend = make(tmp_path, executor, [
        call("add_cell", source=f"from IPython.display import display\ndisplay({{'text/plain': 'f', "
                                f"'{FINDINGS_MIME}': {{'findings': []}}}}, raw=True)", note="Check the predictions."),
        call("render", image="image", title="a montage"),
        call("judge", context="predictions"),
        call("finish", status="failed", summary="x"),
    ], approver=lambda cell_id, source, concerns: next(decisions))
    events, _ = run(agent)
    verdicts = [e for e in events if e.kind == "verdict"]
    assert [(v.judge, v.verdict) for v in verdicts] == [("panel", "not_checked")]
    assert "c2" in verdicts[0].reason and "skipped by you" in verdicts[0].reason
    assert backend.views[3].history[-1].observation.text.startswith("Verdict: not checked")


def test_a_solved_notebook_says_the_answer_first_in_plain_words(tmp_path, executor):
    report = ("from IPython.display import display\n"
              f"display({{'text/plain': 'm', '{METRICS_MIME}': {{'dice_LV': 0.9, 'hd95_RV_mm': 4.5}}}}, raw=True)")
    agent, _ = make(tmp_path, executor, [call("add_cell", source=report, note="Measure."),
                                         call("finish", status="solved", summary="Dice LV is 0.90.")])
    _, finished = run(agent)
    assert finished.reason == "the task is done, and the notebook re-ran top to bottom in a fresh kernel to the same numbers"
    nb = nbformat.read(finished.notebook, as_version=4)
    assert "**In short:** Dice LV is 0.90." in nb.cells[0].source  # the answer at the top
    assert "| HD95 RV (mm) | 4.5 |" in nb.cells[-1].source and "hd95_RV_mm" not in nb.cells[-1].source
