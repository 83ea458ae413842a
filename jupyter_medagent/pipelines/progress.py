"""Progress of a long loop (training), as tqdm shows it, in one output line updated in place.

The same output carries a structured report under PROGRESS_MIME (step, total, elapsed, ETA), which the
agent turns into Progress events: the MedAgent sidebar draws it as a progress bar while the cell runs.
"""

from __future__ import annotations

import time

from tqdm import tqdm

from jupyter_medagent.contracts.mime import PROGRESS_MIME


class LoopProgress:
    """``progress = LoopProgress(total, "training")``, then ``progress.update(step, loss=...)`` each step."""

    def __init__(self, total: int, what: str = "training", every_s: float = 1.0):
        from IPython.display import display

        self.total, self.what, self.every_s = total, what, every_s
        self.started = time.perf_counter()
        self._shown_at = -every_s
        self._handle = display(self._bundle(0, {}), display_id=True, raw=True)

    def update(self, done: int, **postfix: float) -> None:
        """Show progress: at most once every ``every_s`` seconds, and always at the end.

        Args:
            done: iterations finished so far (of ``total``).
            postfix: named numbers to show beside the bar (loss=0.31).

        Returns:
            None.
        """
        now = time.perf_counter()
        if now - self._shown_at >= self.every_s or done >= self.total:
            self._shown_at = now
            if self._handle is not None:  # None outside IPython: nothing to update
                self._handle.update(self._bundle(done, postfix), raw=True)

    def _bundle(self, done: int, postfix: dict) -> dict:
        elapsed = time.perf_counter() - self.started
        words = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in postfix.items())
        line = tqdm.format_meter(done, self.total, elapsed, prefix=self.what, postfix=words or None, ncols=100)
        eta = elapsed / done * (self.total - done) if done else None
        return {"text/plain": line,
                PROGRESS_MIME: {"what": self.what, "done": done, "total": self.total, "elapsed_s": round(elapsed, 1),
                                "eta_s": None if eta is None else round(eta, 1), "text": line}}
