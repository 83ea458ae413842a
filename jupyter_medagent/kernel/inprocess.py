"""Run cells inside the current IPython (the ``%%medagent`` magic's kernel).

Every variable a cell makes stays in the user's namespace. Outputs are captured as
nbformat outputs (JSON-ready: PNGs as base64, as a kernel sends them) instead of being shown under
the magic's own cell, and reported as they arrive. With a guard policy the
runtime guard is installed in this process and every cell runs marked, then released.
"""

from __future__ import annotations

import base64
import io
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from collections.abc import Callable

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher

from jupyter_medagent.agent.protocols import ExecutionResult
from jupyter_medagent.contracts.errors import MedagentError
from jupyter_medagent.isolation import guard as runtime_guard
from jupyter_medagent.kernel.outputs import append_output, error_dict


def json_ready(data: dict) -> dict:
    """A MIME bundle as a kernel would send it: binary formats (PNG bytes from IPython's formatters) as
    base64 text, so the bundle can be written into a notebook and sent to a front end as JSON."""
    ready = {}
    for mime, value in data.items():
        if isinstance(value, (bytes, bytearray)):
            binary = mime.startswith(("image/", "application/pdf")) and mime != "image/svg+xml"
            value = base64.b64encode(value).decode("ascii") if binary else bytes(value).decode("utf-8", "replace")
        ready[mime] = value
    return ready


class _LiveOutputs:
    """A cell's outputs in nbformat form, in the order they happen, reported to ``on_output`` as they arrive."""

    def __init__(self, on_output: Callable[[list[dict]], None] | None):
        self.outputs: list[dict] = []
        self.displays: dict[str, dict] = {}
        self.on_output = on_output

    def changed(self) -> None:
        if self.on_output is not None:
            self.on_output([dict(o) for o in self.outputs])

    def stream(self, name: str, text: str) -> None:
        append_output(self.outputs, {"output_type": "stream", "name": name, "text": text})
        self.changed()

    def display(self, data: dict, metadata: dict | None, transient: dict | None, update: bool) -> None:
        display_id = (transient or {}).get("display_id")
        if update:
            shown = self.displays.get(display_id)
            if shown is not None:
                shown.update(data=json_ready(data), metadata=dict(metadata or {}))
                self.changed()
            return
        output = {"output_type": "display_data", "data": json_ready(data), "metadata": dict(metadata or {})}
        if display_id:
            self.displays[display_id] = output
        self.outputs.append(output)
        self.changed()

    def result(self, data: dict, metadata: dict | None) -> None:
        self.outputs.append({"output_type": "execute_result", "data": json_ready(data), "metadata": dict(metadata or {}),
                             "execution_count": None})
        self.changed()

    def clear(self) -> None:
        self.outputs.clear()
        self.changed()


class _StreamWriter(io.TextIOBase):
    """sys.stdout / sys.stderr while a cell runs: text goes to the cell's outputs, not under the magic."""

    def __init__(self, name: str, live: _LiveOutputs):
        self.name, self.live = name, live

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            self.live.stream(self.name, text)
        return len(text)


class _Publisher(DisplayPublisher):
    def __init__(self, live: _LiveOutputs, **kwargs):
        super().__init__(**kwargs)
        self.live = live

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False):
        self.live.display(data, metadata, transient, update)

    def clear_output(self, wait=False):
        self.live.clear()


class _CapturingDisplayHook(DisplayHook):
    """Turns a cell's last-expression value into an execute_result output instead of printing it."""

    def __init__(self, shell, live: _LiveOutputs):
        super().__init__(shell=shell, cache_size=0)
        self.live = live

    def start_displayhook(self):
        pass

    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        self.live.result(format_dict, md_dict)

    def finish_displayhook(self):
        pass


@contextmanager
def _capture(shell, live: _LiveOutputs):
    """Everything a cell shows goes to ``live``: prints, displays (matplotlib's too), its last value."""
    saved = (sys.stdout, sys.stderr, sys.displayhook, shell.display_pub, shell.displayhook, shell.display_trap.hook,
             shell.showtraceback)
    hook = _CapturingDisplayHook(shell, live)
    sys.stdout, sys.stderr = _StreamWriter("stdout", live), _StreamWriter("stderr", live)
    shell.display_pub = _Publisher(live, shell=shell)
    # sys.displayhook too: the magic's own cell holds IPython's display trap open, so a nested cell's trap
    # would not install the hook.
    sys.displayhook = shell.displayhook = shell.display_trap.hook = hook
    shell.showtraceback = lambda *args, **kwargs: None  # errors are returned, not printed under the magic
    try:
        yield
    finally:
        (sys.stdout, sys.stderr, sys.displayhook, shell.display_pub, shell.displayhook, shell.display_trap.hook,
         shell.showtraceback) = saved


@contextmanager
def _time_limit(seconds: float | None):
    """Raise TimeoutError in the cell after ``seconds`` (main thread only, where signals arrive)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"cell interrupted after {seconds:.0f} s (the per-cell time-out)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class InProcessExecutor:
    inline = True  # cells run in the caller's thread: the kernel's main thread, where signals arrive

    def __init__(self, shell=None, guard: dict | None = None):
        if shell is None:
            from IPython import get_ipython

            shell = get_ipython()
        if shell is None:
            raise RuntimeError("InProcessExecutor needs a running IPython (use KernelClientExecutor outside one)")
        self.shell = shell
        self.guard = guard
        if guard is not None and runtime_guard.install(guard) == "refused":
            raise MedagentError("the runtime guard in this kernel is still armed by another run; restart the kernel")

    def execute(self, code: str, timeout: float | None = None,
                on_output: Callable[[list[dict]], None] | None = None) -> ExecutionResult:
        shell = self.shell
        start = time.monotonic()
        live = _LiveOutputs(on_output)
        token, announced = runtime_guard.token_pair()
        try:
            with _capture(shell, live), _time_limit(timeout):
                result = shell.run_cell(runtime_guard.mark(code, announced) if self.guard else code, store_history=False)
        finally:
            if self.guard is not None:
                shell.run_cell(runtime_guard.release_cell(token), store_history=False, silent=True)
        outputs = live.outputs
        error = None
        exc = result.error_before_exec or result.error_in_exec
        if isinstance(exc, KeyboardInterrupt):  # the user pressed the kernel's stop button: the run stops
            raise KeyboardInterrupt
        if exc is not None:
            lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
            error = error_dict(type(exc).__name__, str(exc), lines)
            outputs.append({"output_type": "error", **error})
        return ExecutionResult(outputs, error, time.monotonic() - start)

    def interrupt(self) -> None:
        # The magic runs the agent in the kernel's main thread: Jupyter's interrupt (SIGINT) reaches
        # the running cell directly, so there is nothing to forward.
        pass

    def close(self) -> None:
        pass
