"""A kernel that dies under a cell: with on_kernel_death="restart" the executor starts a fresh kernel and the
kept cells run again, so the run goes on with its variables; with "fail" the run ends and says why."""

from __future__ import annotations

from jupyter_medagent.agent.loop import Agent
from jupyter_medagent.contracts.task import Task

from .conftest import ScriptedBackend, call

DIES = "import os\nos._exit(3)"


def outputs_text(event):
    return "".join(o.get("text", "") for o in event.outputs)


def test_a_restarted_kernel_replays_the_kept_cells_and_the_run_goes_on(tmp_path, executor):
    seen = []
    backend = ScriptedBackend([call("add_cell", source="x = 41", note="Set x."),
                               call("add_cell", source=DIES, note="Crash the kernel."),
                               lambda view: seen.append(view.history[-1].observation) or call(
                                   "add_cell", source="print(x + 1)", note="Use x."),
                               call("finish", status="solved", summary="done")])
    agent = Agent(Task("compute", None, str(tmp_path)), backend, executor, notebook_path=tmp_path / "out.ipynb",
                  reexecute=False, on_kernel_death="restart")
    events = list(agent.run())
    death = seen[0]
    assert death.is_error and "the kernel died" in death.text and "A fresh kernel was started" in death.text
    assert any(e.kind == "message" and "restarting it and replaying the 1 kept cell(s)" in e.text for e in events)
    printed = [outputs_text(e) for e in events if e.kind == "cell_executed" and e.cell_id == "c3"]
    assert printed == ["42\n"]  # x came back with the replayed cell
    assert events[-1].kind == "finished" and events[-1].status == "solved"


def test_a_dead_kernel_ends_the_run_when_restarting_is_not_asked_for(tmp_path, executor):
    backend = ScriptedBackend([call("add_cell", source=DIES, note="Crash the kernel."),
                               call("finish", status="solved", summary="never reached")])
    agent = Agent(Task("compute", None, str(tmp_path)), backend, executor, notebook_path=tmp_path / "out.ipynb",
                  reexecute=False)
    finished = list(agent.run())[-1]
    assert finished.status == "failed" and "the kernel died" in finished.reason
