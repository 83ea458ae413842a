"""A running cell's outputs as live events: a few CellOutput snapshots a second, and Progress whenever the
cell's progress report (PROGRESS_MIME, see pipelines/progress.py) moves on."""

from __future__ import annotations

import time
from typing import Any

from jupyter_medagent.contracts.events import CellOutput, Event, Progress
from jupyter_medagent.contracts.mime import PROGRESS_MIME
from jupyter_medagent.isolation.outputs import clean_outputs

SNAPSHOT_EVERY_S = 0.5  # enough to look live, few enough that a chatty cell does not flood the event log


def progress_in(outputs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest progress report among a cell's outputs."""
    for output in reversed(outputs):
        report = output.get("data", {}).get(PROGRESS_MIME)
        if report:
            return report
    return None


class LiveOutputs:
    """Turns the executor's ``on_output`` calls for one cell into events, throttled."""

    def __init__(self, cell_id: str):
        self.cell_id = cell_id
        self.started = time.monotonic()
        self._last_sent = self.started  # a cell done within SNAPSHOT_EVERY_S needs no live view: CellExecuted follows
        self._last_progress: tuple | None = None
        self._sent_outputs: list | None = None

    def events(self, outputs: list[dict[str, Any]]) -> list[Event]:
        now = time.monotonic()
        events: list[Event] = []
        report = progress_in(outputs)
        moved = False
        if report is not None:
            key = (report.get("what"), report.get("done"), report.get("total"))
            if key != self._last_progress:
                moved = True
                self._last_progress = key
                events.append(Progress(str(report.get("what", "work")), int(report.get("done", 0)),
                                       int(report.get("total", 0)), float(report.get("elapsed_s", now - self.started)),
                                       report.get("eta_s"), str(report.get("text", "")), self.cell_id))
        # A snapshot at least every SNAPSHOT_EVERY_S, and with every progress move, so that the cell's output on the
        # page never lags behind the progress bar (a training step may take longer than the interval).
        if (moved or now - self._last_sent >= SNAPSHOT_EVERY_S) and outputs != self._sent_outputs:
            self._last_sent = now
            # Copies: the executor appends to its output dicts in place. Cleaned: a model cell's HTML may name
            # remote images, which a page would fetch.
            self._sent_outputs = [dict(o) for o in clean_outputs(outputs)]
            events.append(CellOutput(self.cell_id, self._sent_outputs, round(now - self.started, 1)))
        return events
