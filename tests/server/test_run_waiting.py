"""Waiting for a run's events sleeps on the server's event loop: it neither spins nor misses a wake-up."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

from jupyter_medagent.server.runs import RunManager


async def test_a_waiter_sleeps_until_the_run_has_news_and_leaves_the_loop_free(tmp_path):
    runs = RunManager(str(tmp_path), kernel_manager=None)
    run = SimpleNamespace(events=[{"seq": 0}], done=False)
    loop = asyncio.get_running_loop()
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    other = asyncio.ensure_future(ticker())
    started = loop.time()
    await runs.wait_for(run, 1, 0.5)  # one event seen, none new: the whole timeout passes
    assert loop.time() - started >= 0.5 and ticks >= 20  # and the loop ran other work meanwhile

    def worker():  # a run's thread appends an event and wakes the loop
        time.sleep(0.3)
        run.events.append({"seq": 1})
        runs._wake()

    threading.Thread(target=worker).start()
    started = loop.time()
    await runs.wait_for(run, 1, 30.0)
    assert 0.25 <= loop.time() - started < 5 and len(run.events) == 2
    started = loop.time()
    await runs.wait_for(run, 1, 30.0)  # already past what was seen: back at once
    run.done = True
    await runs.wait_for(run, 2, 30.0)  # a finished run has nothing more to wait for
    assert loop.time() - started < 0.5
    other.cancel()


async def test_a_start_cancelled_while_its_kernel_starts_lets_the_kernel_go(tmp_path, monkeypatch):
    """The chat's Stop during a run's start: the agent built after all is not left holding a kernel."""
    from jupyter_medagent.server.runs import RunRequest

    runs = RunManager(str(tmp_path), kernel_manager=None)
    closed = threading.Event()

    def slow_build(run_id, spec, notebook, km):
        time.sleep(0.5)  # a sandboxed kernel starting
        return SimpleNamespace(executor=SimpleNamespace(close=closed.set))

    monkeypatch.setattr(runs, "_build", slow_build)
    start = asyncio.ensure_future(runs.start(RunRequest("r", None, None, "chat.ipynb", isolated=True)))
    await asyncio.sleep(0.1)
    start.cancel()
    await asyncio.gather(start, return_exceptions=True)
    assert start.cancelled() and not runs.runs and not runs._starting
    await asyncio.get_running_loop().run_in_executor(None, closed.wait, 5.0)
    assert closed.is_set()
