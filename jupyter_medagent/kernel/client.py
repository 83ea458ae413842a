"""Run cells in a kernel through jupyter_client: a kernel of its own (CLI) or an existing one (server).

No short time-out: training cells run for minutes. ``interrupt()`` may be called from
another thread while ``execute`` waits.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from queue import Empty
from typing import Callable

import nbformat
from jupyter_client import BlockingKernelClient, KernelManager

from jupyter_medagent.agent.protocols import ExecutionResult
from jupyter_medagent.errors import MedagentError
from jupyter_medagent.kernel.outputs import append_output, error_dict

POLL_S = 0.5


class KernelClientExecutor:
    def __init__(self, cwd=None, connection_file: str | None = None, kernel_name: str = "python3",
                 session_id: str | None = None, interrupt: Callable[[], None] | None = None,
                 env: dict[str, str] | None = None, startup_timeout: float = 60.0, client=None, manager=None):
        """A new local kernel (``cwd``, ``kernel_name``, ``env``), an existing one (``connection_file``), or a
        client and manager made elsewhere (a kernel gateway's, see kernel/gateway.py)."""
        self._interrupt_callback = interrupt
        self.manager: KernelManager | None = manager
        if client is not None:
            self.client = client
        elif connection_file:
            self.client = BlockingKernelClient(connection_file=connection_file)
            self.client.load_connection_file()
        else:
            self.manager = KernelManager(kernel_name=kernel_name)
            kernel_env = {**os.environ, **(env or {})}
            self.manager.start_kernel(cwd=str(cwd) if cwd else None, env=kernel_env)
            self.client = self.manager.client()
        # Our own session id: the server's front end and this client talk to one kernel side by side.
        self.client.session.session = session_id or f"medagent-{uuid.uuid4().hex[:12]}"
        self.client.start_channels()
        try:
            self.client.wait_for_ready(timeout=startup_timeout)
        except RuntimeError:
            self.close()
            raise MedagentError(f"the {kernel_name} kernel did not answer within {startup_timeout:.0f} s "
                                f"({'connection file ' + connection_file if connection_file else 'new kernel'})") from None
        self._lock = threading.Lock()

    def execute(self, code: str, timeout: float | None = None) -> ExecutionResult:
        with self._lock:
            start = time.monotonic()
            msg_id = self.client.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
            outputs: list[dict] = []
            error = None
            timed_out = False
            while True:
                if timeout is not None and not timed_out and time.monotonic() - start > timeout:
                    timed_out = True
                    self.interrupt()
                try:
                    msg = self.client.get_iopub_msg(timeout=POLL_S)
                except Empty:
                    continue
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "status" and content["execution_state"] == "idle":
                    break
                if kind == "clear_output":
                    outputs.clear()
                elif kind in ("stream", "display_data", "execute_result", "error"):
                    output = dict(nbformat.v4.output_from_msg(msg))
                    if kind == "error":
                        error = error_dict(content["ename"], content["evalue"], content["traceback"])
                        output.update(error)
                    append_output(outputs, output)
            if timed_out:
                error = error_dict("TimeoutError", f"cell interrupted after {timeout:.0f} s", [])
            return ExecutionResult(outputs, error, time.monotonic() - start)

    def interrupt(self) -> None:
        if self._interrupt_callback is not None:
            self._interrupt_callback()
        elif self.manager is not None:
            self.manager.interrupt_kernel()

    def close(self) -> None:
        self.client.stop_channels()
        if self.manager is not None:
            self.manager.shutdown_kernel(now=True)
