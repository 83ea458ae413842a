"""Run cells inside the current IPython (the ``%%medagent`` magic's kernel).

Every variable a cell makes stays in the user's namespace. Outputs are captured as
nbformat outputs instead of being shown under the magic's own cell. With a guard policy the
runtime guard is installed in this process and every cell runs marked, then released.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from contextlib import contextmanager

from IPython.core.displayhook import DisplayHook
from IPython.utils.capture import capture_output

from jupyter_medagent.agent.protocols import ExecutionResult
from jupyter_medagent.errors import MedagentError
from jupyter_medagent.isolation import guard as runtime_guard
from jupyter_medagent.kernel.outputs import append_output, error_dict


class _CapturingDisplayHook(DisplayHook):
    """Turns a cell's last-expression value into an execute_result output instead of printing it."""

    def __init__(self, shell, sink: list):
        super().__init__(shell=shell, cache_size=0)
        self.sink = sink

    def start_displayhook(self):
        pass

    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        self.sink.append({"output_type": "execute_result", "data": format_dict, "metadata": md_dict or {},
                          "execution_count": None})

    def finish_displayhook(self):
        pass


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

    def execute(self, code: str, timeout: float | None = None) -> ExecutionResult:
        shell = self.shell
        start = time.monotonic()
        results: list[dict] = []
        token, announced = runtime_guard.token_pair()
        saved = (shell.displayhook, shell.display_trap.hook, shell.showtraceback)
        shell.displayhook = shell.display_trap.hook = _CapturingDisplayHook(shell, results)
        shell.showtraceback = lambda *args, **kwargs: None  # errors are returned, not printed under the magic
        try:
            with capture_output(display=True) as captured, _time_limit(timeout):
                result = shell.run_cell(runtime_guard.mark(code, announced) if self.guard else code, store_history=False)
        finally:
            shell.displayhook, shell.display_trap.hook, shell.showtraceback = saved
            if self.guard is not None:
                shell.run_cell(runtime_guard.release_cell(token), store_history=False, silent=True)
        outputs: list[dict] = []
        for name, text in (("stdout", captured.stdout), ("stderr", captured.stderr)):
            if text:
                append_output(outputs, {"output_type": "stream", "name": name, "text": text})
        for rich in captured.outputs:
            outputs.append({"output_type": "display_data", "data": dict(rich.data), "metadata": dict(rich.metadata or {})})
        outputs.extend(results)
        error = None
        exc = result.error_before_exec or result.error_in_exec
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
