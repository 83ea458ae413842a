"""A blocking call (a model's streamed reply, a cell, the verification re-run) in a worker thread, while
the caller's generator yields the live events it reports and stays free to notice a stop: the agent and the
notebook's verifier run their calls this way."""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, TypeVar
from collections.abc import Callable, Generator, Iterable

if TYPE_CHECKING:
    from jupyter_medagent.contracts.events import Event

Item = TypeVar("Item")
Result = TypeVar("Result")

POLL_S = 0.25  # how often a quiet worker is checked on (and a stop noticed)


def in_background(work: Callable[[Callable[[Item], None]], Result], events: Callable[[Item], Iterable[Event]], *,
                  name: str, stopped: Callable[[], bool] | None = None, newest_only: bool = False,
                  on_abort: Callable[[], None] | None = None) -> Generator[Event, None, Result | None]:
    """Run ``work(report)`` in a daemon thread; each item it reports becomes ``events(item)``, yielded in the
    caller's thread. Returns what ``work`` returned and re-raises what it raised.

    ``stopped``: once true, the call is abandoned (it returns None; the call ends at its own time-out).
    ``newest_only``: items are snapshots, only the latest one waiting matters.
    ``on_abort``: the caller was interrupted or closed while waiting: it is called (to end what the worker
    blocks on) and the worker joined, so nothing it holds outlives the caller."""
    reports: queue.Queue = queue.Queue()
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = work(reports.put)
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    try:
        while worker.is_alive() or not reports.empty():
            try:
                item = reports.get(timeout=POLL_S)
            except queue.Empty:
                if stopped is not None and stopped():
                    return None
                continue
            while newest_only and not reports.empty():
                item = reports.get_nowait()
            yield from events(item)
    except BaseException:
        if on_abort is None:
            raise
        on_abort()
        worker.join()
        raise
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
