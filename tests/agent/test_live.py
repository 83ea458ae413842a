"""A running cell's live view: what the page shows of its outputs keeps up with the cell."""

from jupyter_medagent.agent import live
from jupyter_medagent.agent.live import LiveOutputs
from jupyter_medagent.contracts.mime import PROGRESS_MIME
from jupyter_medagent.kernel.outputs import append_output


def _snapshots(events):
    return [e.outputs for e in events if e.kind == "cell_output"]


def test_text_a_cell_appends_reaches_the_page(monkeypatch):
    """The executor appends stream text to its output dicts in place; each snapshot still shows the new text."""
    clock = iter(range(0, 100, 1))
    monkeypatch.setattr(live.time, "monotonic", lambda: float(next(clock)))
    view, outputs = LiveOutputs("c1"), []
    append_output(outputs, {"output_type": "stream", "name": "stdout", "text": "epoch 1\n"})
    first = _snapshots(view.events(outputs))
    append_output(outputs, {"output_type": "stream", "name": "stdout", "text": "epoch 2\n"})
    second = _snapshots(view.events(outputs))
    assert first[0][0]["text"] == "epoch 1\n" and second[0][0]["text"] == "epoch 1\nepoch 2\n"


def test_a_progress_move_sends_the_cells_output_with_it(monkeypatch):
    """A training step slower than the snapshot interval: the page's output moves with the progress bar."""
    monkeypatch.setattr(live.time, "monotonic", lambda: 10.0)  # no time passes: only the progress moves
    view = LiveOutputs("c1")

    def report(done):
        return [{"output_type": "display_data", "metadata": {},
                 "data": {"text/plain": f"training: {done}/450", PROGRESS_MIME: {"what": "training", "done": done,
                                                                                "total": 450}}}]

    events = view.events(report(1))
    assert [e.kind for e in events] == ["progress", "cell_output"]
    assert _snapshots(events)[0][0]["data"]["text/plain"] == "training: 1/450"
    assert _snapshots(view.events(report(1))) == []  # nothing new, nothing sent
