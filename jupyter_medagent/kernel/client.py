"""Run cells in a kernel through jupyter_client: a kernel of its own (CLI, persona, isolated sidebar runs)
or an existing one (the notebook's kernel behind the sidebar).

No short time-out by default: training cells run for minutes. ``interrupt()`` may be called from
another thread while ``execute`` waits. A kernel that dies is noticed within about a second
(process gone, or heartbeat lost for a kernel we only connect to) and raises ``KernelDied``.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from queue import Empty
from collections.abc import Callable

import nbformat
from jupyter_client import BlockingKernelClient, KernelManager

from jupyter_medagent.contracts.protocols import ExecutionResult, ExecutorBase, ReportsLaunchRefusal
from jupyter_medagent.contracts.errors import KernelDied, MedagentError
from jupyter_medagent.isolation import guard as runtime_guard
from jupyter_medagent.kernel.outputs import append_output, error_dict
from jupyter_medagent.kernel.process import kernel_process

POLL_S = 0.5
INTERRUPT_GRACE_S = 10.0  # after a time-out's interrupt, how long a cell may take to stop
RELEASE_TIMEOUT_S = 30.0


class KernelClientExecutor(ExecutorBase):
    def __init__(self, cwd=None, connection_file: str | None = None, kernel_name: str = "python3",
                 session_id: str | None = None, interrupt: Callable[[], None] | None = None,
                 env: dict[str, str] | None = None, startup_timeout: float = 60.0,
                 manager: KernelManager | None = None, guard: dict | None = None, client=None):
        """``manager``: a prepared KernelManager to start (a sandboxed or guarded kernel); else a
        ``kernel_name`` kernel of our own, or the running kernel behind ``connection_file``; or ``client``
        (with its started ``manager``, if ours) made elsewhere: a kernel gateway's, see kernel/gateway.py.
        ``guard``: the runtime guard's policy; every cell then runs marked, and is released after."""
        self._interrupt_callback = interrupt
        self.manager: KernelManager | None = None
        self.guard = guard
        self._startup_timeout = startup_timeout
        self._describe = "connection file " + connection_file if connection_file else "new kernel"
        if client is not None:
            self.client, self.manager, self._describe = client, manager, "kernel gateway"
        elif connection_file:
            self.client = BlockingKernelClient(connection_file=connection_file)
            self.client.load_connection_file()
        else:
            self.manager = manager or KernelManager(kernel_name=kernel_name)
            start = {"cwd": str(cwd) if cwd else None}
            if manager is None:
                start["env"] = {**os.environ, **(env or {})}
            self.manager.start_kernel(**start)
            self.client = self.manager.client()
        # Our own session id: the server's front end and this client talk to one kernel side by side.
        self.client.session.session = session_id or f"medagent-{uuid.uuid4().hex[:12]}"
        self.client.start_channels()
        self._lock = threading.Lock()
        self._ready()

    def _ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        try:
            while True:
                try:
                    self.client.wait_for_ready(timeout=max(1.0, deadline - time.monotonic()))
                    break
                except RuntimeError:
                    # A kernel we only connect to is judged by its heartbeat, which a kernel still starting
                    # (the server answers before its kernel listens) misses: not a death, until the deadline.
                    if self.manager is not None or time.monotonic() >= deadline:
                        raise
                    time.sleep(0.5)
        except RuntimeError:
            refusal = self._launch_refusal()
            heard = self._heartbeat()
            self.close()
            if refusal:
                raise MedagentError(f"the kernel did not start: {refusal}") from None
            raise MedagentError(f"the kernel did not answer within {self._startup_timeout:.0f} s "
                                f"({self._describe}{heard})") from None
        if self.guard is not None:
            result = self._run(runtime_guard.install_code(self.guard), timeout=60)
            said = "".join(o.get("text", "") for o in result.outputs).strip()
            if said not in ("installed", "configured"):
                self.close()
                raise MedagentError("the runtime guard could not be set up in the kernel "
                                    f"({said or (result.error or {}).get('evalue', 'no answer')}); restart the kernel")

    def _heartbeat(self) -> str:
        """Whether a kernel that gave no kernel_info reply still beats: it lives but does not answer, or not."""
        try:
            return "; its heartbeat answers" if self.client.hb_channel.is_beating() else "; no heartbeat either"
        except (AttributeError, RuntimeError):  # a gateway's client has no heartbeat of its own
            return ""

    def _launch_refusal(self) -> str | None:
        """Why the launcher refused to start a kernel of ours (isolation/launch.py), if it did: from its
        stderr, which only the host holds (sandbox._ProjectKernel.launch_refusal)."""
        return self.manager.launch_refusal() if isinstance(self.manager, ReportsLaunchRefusal) else None

    # ------------------------------------------------------------------ running cells
    def execute(self, code: str, timeout: float | None = None,
                on_output: Callable[[list[dict]], None] | None = None) -> ExecutionResult:
        with self._lock:
            if self.guard is None:
                return self._run(code, timeout, on_output=on_output)
            token, announced = runtime_guard.token_pair()
            result = self._run(runtime_guard.mark(code, announced), timeout, on_output=on_output)
            self._run(runtime_guard.release_cell(token), RELEASE_TIMEOUT_S, silent=True)
            return result

    def _run(self, code: str, timeout: float | None, silent: bool = False,
             on_output: Callable[[list[dict]], None] | None = None) -> ExecutionResult:
        start = time.monotonic()
        msg_id = self.client.execute(code, silent=silent, store_history=not silent, allow_stdin=False,
                                     stop_on_error=False)
        outputs: list[dict] = []
        displays: dict[str, dict] = {}  # display_id -> the output it names, for update_display_data
        error = None
        interrupted_at = None
        while True:
            waited = time.monotonic() - start
            if timeout is not None and interrupted_at is None and waited > timeout:
                interrupted_at = time.monotonic()
                self.interrupt()
            if interrupted_at is not None and time.monotonic() - interrupted_at > INTERRUPT_GRACE_S:
                return self._unstoppable(timeout, outputs, start)
            try:
                msg = self.client.get_iopub_msg(timeout=POLL_S)
            except Empty:
                if not self.alive():
                    raise KernelDied(self._death_reason()) from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "clear_output":
                outputs.clear()
            elif kind == "update_display_data":  # a progress line updated in place, say
                shown = displays.get(content.get("transient", {}).get("display_id"))
                if shown is None:
                    continue
                shown.update(data=content["data"], metadata=content.get("metadata", {}))
            elif kind in ("stream", "display_data", "execute_result", "error"):
                output = dict(nbformat.v4.output_from_msg(msg))
                if kind == "error":
                    error = error_dict(content["ename"], content["evalue"], content["traceback"])
                    output.update(error)
                display_id = content.get("transient", {}).get("display_id") if kind == "display_data" else None
                if display_id:
                    displays[display_id] = output
                append_output(outputs, output)
            else:
                continue
            if on_output is not None:
                on_output([dict(o) for o in outputs])
        if interrupted_at is not None:  # the kernel's KeyboardInterrupt, named for what it was
            error = error_dict("TimeoutError", f"cell interrupted after {timeout:.0f} s (the per-cell time-out)", [])
            outputs = [o for o in outputs if o.get("output_type") != "error"] + [{"output_type": "error", **error}]
        return ExecutionResult(outputs, error, time.monotonic() - start)

    def _unstoppable(self, timeout: float, outputs: list[dict], start: float) -> ExecutionResult:
        """A cell that ignores the interrupt (native code): our own kernel is stopped; a kernel we only
        connect to is left to its owner, and the run is told it is still busy."""
        if self.manager is not None:
            self.manager.shutdown_kernel(now=True)
            raise KernelDied(f"a cell ran past its time-out of {timeout:.0f} s and ignored the interrupt for "
                             f"{INTERRUPT_GRACE_S:.0f} s; the kernel was stopped")
        error = error_dict("TimeoutError", f"cell still running {INTERRUPT_GRACE_S:.0f} s after the interrupt that "
                           f"followed its {timeout:.0f} s time-out", [])
        return ExecutionResult(outputs, error, time.monotonic() - start)

    # ------------------------------------------------------------------ the kernel's life
    def alive(self) -> bool:
        if self.manager is not None:
            return self.manager.is_alive()
        return self.client.hb_channel.is_beating()

    def _death_reason(self) -> str:
        process = kernel_process(self.manager)
        code = process.poll() if process is not None else None
        signal_name = ""
        if code is not None and code < 0:
            import signal

            signal_name = f", killed by {signal.Signals(-code).name}"
        elif code is not None:
            signal_name = f", exit status {code}"
        return f"the kernel died ({self._describe}{signal_name})"

    @property
    def can_restart(self) -> bool:
        return self.manager is not None

    def restart(self) -> None:
        """A fresh kernel in place of a dead one (same sandbox, same guard); the caller replays cells."""
        if self.manager is None:
            raise KernelDied("the kernel died and is not ours to restart")
        self.manager.restart_kernel(now=True)
        self._ready()

    def interrupt(self) -> None:
        if self._interrupt_callback is not None:
            self._interrupt_callback()
        elif self.manager is not None and self.manager.is_alive():
            self.manager.interrupt_kernel()

    def close(self) -> None:
        self.client.stop_channels()
        if self.manager is not None and self.manager.has_kernel:
            self.manager.shutdown_kernel(now=True)
        elif self.manager is not None:
            self.manager.cleanup_resources()
