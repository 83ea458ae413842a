"""The judge tells the truth about time: findings say which cell and turn reported them, a later check of the
same scope clears what it no longer finds, and "nothing to judge" names what really happened."""

from __future__ import annotations

from jupyter_medagent.agent.loop import Agent
from jupyter_medagent.contracts.mime import FINDINGS_MIME, METRICS_MIME
from jupyter_medagent.contracts.task import Task

from .conftest import ScriptedBackend, call

FLIP = {"case": "p1", "kind": "orientation_flip", "severity": "error", "message": "label flipped", "evidence": {}}
SCALE = {"case": "p2", "kind": "intensity_scale", "severity": "warning", "message": "x1000", "evidence": {}}
ANATOMY = {"case": "p1", "kind": "implausible_anatomy", "severity": "warning", "message": "no ring", "evidence": {}}


def report(findings, scope=None):
    payload = {"findings": findings, **({"scope": scope} if scope else {})}
    return f"from IPython.display import display\ndisplay({{'text/plain': 'f', '{FINDINGS_MIME}': {payload!r}}}, raw=True)"


METRICS = f"from IPython.display import display\ndisplay({{'text/plain': 'm', '{METRICS_MIME}': {{'ef_mae': 0.4}}}}, raw=True)"


def run(tmp_path, executor, turns):
    backend = ScriptedBackend(turns)
    agent = Agent(Task("check", None, str(tmp_path)), backend, executor, reexecute=False)
    events = list(agent.run())
    return [e for e in events if e.kind == "verdict"], backend


def test_a_later_check_clears_what_it_no_longer_finds_and_findings_name_their_cell(tmp_path, executor):
    verdicts, backend = run(tmp_path, executor, [
        call("add_cell", source=report([FLIP, SCALE]), note="Check the data."),
        call("judge"),
        call("add_cell", source=report([SCALE]), note="Repair the flip and check again."),
        call("add_cell", source=report([ANATOMY], scope="predictions"), note="Check the predictions."),
        call("judge"),
        call("add_cell", source=report([]), note="Rescale and check again."),
        call("judge"),
        call("finish", status="failed", summary="x"),
    ])
    assert [v.verdict for v in verdicts] == ["flag", "flag", "flag"]
    first = backend.views[2].history[-1].observation.text
    assert "p1: orientation_flip: label flipped [reported by cell c1 (turn 1)]" in first
    # The flip is cleared by c2; the scale still stands (now from c2); the predictions' own report stands beside it.
    second = backend.views[5].history[-1].observation
    assert "2 finding(s) stand now, 1 earlier one(s) cleared" in second.text
    assert "p2: intensity_scale: x1000 [reported by cell c2 (turn 3)]" in second.text
    assert "p1: implausible_anatomy: no ring [reported by cell c3 (turn 4)]" in second.text
    assert "cleared: p1: orientation_flip [reported by cell c1 (turn 1)]; not found again by cell c2 (turn 3)" \
        in second.text
    assert {f["kind"] for f in second.data["findings"]} == {"intensity_scale", "implausible_anatomy"}
    # The data are clean now; only the prediction finding is left, and the verdict says so.
    third = backend.views[7].history[-1].observation
    assert [f["kind"] for f in third.data["findings"]] == ["implausible_anatomy"]
    assert "orientation_flip" in third.text and "intensity_scale" in third.text  # both listed as cleared


def test_the_current_state_decides_the_verdict_not_the_first_cell(tmp_path, executor):
    verdicts, backend = run(tmp_path, executor, [
        call("add_cell", source=report([FLIP]), note="Check the data."),
        call("add_cell", source=report([]), note="Fix and check again."),
        call("judge"),
        call("judge"),
        call("finish", status="failed", summary="x"),
    ])
    assert [v.verdict for v in verdicts] == ["ok", "ok"]
    assert verdicts[0].findings == []
    again = backend.views[4].history[-1].observation.text
    assert "No cell ran a check since the last verdict" in again


def test_a_metrics_bundle_is_not_called_a_skipped_check(tmp_path, executor):
    verdicts, backend = run(tmp_path, executor, [
        call("add_cell", source=METRICS, note="Measure."),
        call("judge"),
        call("finish", status="failed", summary="x"),
    ])
    assert [v.verdict for v in verdicts] == ["not_checked"]
    told = backend.views[2].history[-1].observation.text
    assert "skipped" not in told and "failed" not in told
    assert "cell c1 ran (metrics (not a check))" in told


def test_the_data_card_and_the_judge_say_where_the_request_contradicts_the_data(tmp_path, executor):
    from jupyter_medagent.synth.replicas import synth_cardiac

    data = tmp_path / "data"
    synth_cardiac(data, cases=2, seed=5, pitfalls="none")
    backend = ScriptedBackend([call("inspect_data"), call("add_cell", source=report([]), note="Check."),
                               call("judge"), call("finish", status="failed", summary="x")])
    agent = Agent(Task("In these label maps 1 is the left ventricle (M&Ms convention): report the EF.", str(data),
                       str(tmp_path / "out")), backend, executor, reexecute=False)
    list(agent.run())
    line = ("Request and data disagree: The request says the labels follow M&Ms (1 LV, 2 myocardium, 3 RV); the "
            "labels' shapes show ACDC (1 RV, 2 myocardium, 3 LV), so the data's convention is used.")
    assert backend.views[1].history[-1].observation.text.count(line) == 1
    assert line in backend.views[3].history[-1].observation.text
