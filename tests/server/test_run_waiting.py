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
