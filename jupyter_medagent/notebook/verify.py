"""The verification re-run: the refined notebook top to bottom in a fresh kernel, then its headline numbers
against the ones the run reported, written into its Results cell."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Generator

import nbformat

from jupyter_medagent.contracts.events import Event, Message, Progress
from jupyter_medagent.contracts.background import in_background
from jupyter_medagent.kernel.isolated import new_kernel_manager
from jupyter_medagent.kernel.process import kill_kernel
from jupyter_medagent.notebook.recorder import NotebookRecorder
from jupyter_medagent.notebook.refine import is_guard_cell, reexecute_notebook, replace_results, results_markdown
from jupyter_medagent.notebook.reproduce import Reproduction, compare, notebook_metrics

# What "solved" rests on, by how the notebook was verified: the run's closing sentence.
SOLVED_BECAUSE = {
    "yes": "the task is done, and the notebook re-ran top to bottom in a fresh kernel to the same numbers",
    "skipped": "the task is done; the notebook was not re-run to check its numbers (verification was switched off)",
}


@dataclass
class Verified:
    reexecuted_ok: bool
    verified: str  # "yes", "no" (it did not re-run), "not reproduced" (it re-ran to other numbers)
    problem: str | None = None  # why the run fails its verification
    reproduction: Reproduction | None = None


class Verification:
    def __init__(self, recorder: NotebookRecorder, isolation=None):
        """Re-runs ``recorder``'s notebook in its output folder. ``isolation`` (a KernelIsolation) makes the
        re-run's kernel, else a plain python3 one; ours rather than nbclient's own either way, so that ``kill``
        can end it."""
        if isolation:
            self.manager = new_kernel_manager(isolation, armed_always=True, asynchronous=True)
        else:
            from jupyter_client.manager import AsyncKernelManager

            self.manager = AsyncKernelManager(kernel_name="python3")
        self.recorder, self.path = recorder, recorder.path
        self.cells = sum(c.cell_type == "code" and not is_guard_cell(c)
                         for c in nbformat.read(self.path, as_version=4).cells)  # the agent's, not the guard's

    def run(self, metrics: dict[str, Any], summary: str, stopped: Callable[[], bool],
            on_abort: Callable[[], None]) -> Generator[Event, None, Verified]:
        """The re-run in a worker thread (nbclient takes SIGINT for itself in the main thread, and kills its
        kernel, so the run would not know the user asked it to stop), its progress shown; ``on_abort``: the
        caller was interrupted or closed meanwhile (it should ``kill`` the re-run's kernel)."""
        yield Message(f"Re-running the refined notebook top to bottom in a fresh kernel to verify it ({self.cells} "
                      "cells; the results above stand meanwhile)...")
        progress = CellProgress(self.cells)
        ok, error = yield from in_background(
            lambda report: reexecute_notebook(self.path, kernel_manager=self.manager, cwd=self.recorder.output_dir,
                                              scrub=self.recorder.scrub,
                                              on_cell_done=lambda: report(1)),
            progress.step, name="medagent-reexecution", on_abort=on_abort)
        if not ok:
            return Verified(False, "no", f"the refined notebook did not re-run on its own: {error}")
        if stopped():
            return Verified(True, "yes")
        reproduction = self.compare(metrics, summary)
        return (Verified(True, "yes", None, reproduction) if reproduction.reproduced else
                Verified(True, "not reproduced", reproduction.reason(), reproduction))

    def kill(self) -> None:
        """Thread-safe: the re-run loses its kernel (a stop)."""
        kill_kernel(self.manager)

    def compare(self, metrics: dict[str, Any], summary: str) -> Reproduction:
        """The re-run's headline numbers (now in the file) against ``metrics``, the reported ones, written
        into the notebook's Results cell."""
        nb = nbformat.read(self.path, as_version=4)
        reproduction = compare(metrics, notebook_metrics(nb))
        verified = "yes" if reproduction.reproduced else "not reproduced"
        replace_results(nb, results_markdown(metrics, summary, verified, reproduction))
        self.recorder.write(nb)
        return reproduction


class CellProgress:
    """Progress events as the re-run's cells end, one by one."""

    def __init__(self, total: int):
        self.total, self.done, self.started = total, 0, time.monotonic()

    def step(self, _=None) -> list[Event]:
        self.done += 1
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        return [Progress("verification", self.done, self.total, round(elapsed, 1), round(eta, 1),
                         f"verification: cell {self.done} of {self.total} re-ran")]
