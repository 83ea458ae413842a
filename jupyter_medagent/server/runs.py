"""Agent runs bound to notebook kernels, for the server extension and the Jupyter AI persona.

Each run is one Agent in a worker thread, executing through a KernelClientExecutor: on the
notebook's own kernel (its connection file, our own session id, the runtime guard installed), so
the user's variables are shared (for a model backend only when that kernel is "Python 3 (medagent
sandbox)"; otherwise its cells run in a kernel of the run's own, see session.build_agent), or, with ``isolated``, on a kernel the server starts for the run
in the sandbox (variables are not shared; the persona's runs are always isolated). Minutes-long
cells are fine. Events are kept in order with a sequence number for the long-poll and
server-sent-event endpoints. One active run per kernel (per notebook for isolated runs).
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from collections.abc import Callable

from jupyter_medagent.contracts.options import RunOptions, to_json
from jupyter_medagent.contracts.options import fields as option_fields, from_json as options_from_json
from jupyter_medagent.contracts.errors import ConfigError, MedagentError

MODES = ("auto", "approve")
REQUEST_FIELDS = {"request", "data_dir", "kernel_id", "notebook_path", "mode", "isolated"}  # besides RunOptions'
DECISIONS = ("run", "skip", "edit", "stop")


class RunError(MedagentError):
    """A request the server cannot act on; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class RunRequest:
    request: str
    data_dir: str | None
    kernel_id: str | None  # the notebook's kernel; not needed for an isolated run
    notebook_path: str  # server-relative API path of the user's notebook
    mode: str = "auto"  # approve: the same as the option safety=approve (the sidebar's "Approve each cell")
    isolated: bool = False  # run in a sandboxed kernel of its own instead of the notebook's kernel
    options: RunOptions = field(default_factory=RunOptions)

    @classmethod
    def from_json(cls, body: Any) -> RunRequest:
        """The request in a POST body: its own fields and every field of ``RunOptions`` by name."""
        if not isinstance(body, dict):
            raise RunError(400, "the body must be a JSON object")
        isolated = body.get("isolated", False)
        if not isinstance(isolated, bool):
            raise RunError(400, f"isolated must be true or false, not {isolated!r}")
        required = ("request", "notebook_path") if isolated else ("request", "kernel_id", "notebook_path")
        missing = [k for k in required if not str(body.get(k) or "").strip()]
        if missing:
            raise RunError(400, f"missing field(s): {', '.join(missing)}")
        unknown = set(body) - REQUEST_FIELDS - {spec.name for spec in option_fields()}
        if unknown:
            raise RunError(400, f"unknown field(s): {', '.join(sorted(unknown))}")
        mode = body.get("mode") or "auto"
        if mode not in MODES:
            raise RunError(400, f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        try:
            options = options_from_json(body)
        except ConfigError as exc:
            raise RunError(400, str(exc)) from None
        if mode == "approve":
            options = replace(options, safety="approve")
        return cls(str(body["request"]).strip(), (str(body["data_dir"]).strip() or None) if body.get("data_dir") else None,
                   str(body["kernel_id"]) if body.get("kernel_id") else None, str(body["notebook_path"]), mode,
                   isolated, options)


class Run:
    def __init__(self, run_id: str, spec: RunRequest, agent, executor, waiters: Callable[[], None]):
        self.id, self.spec, self.agent, self.executor = run_id, spec, agent, executor
        self.started = time.time()
        self.events: list[dict[str, Any]] = []  # JSON, with "seq", for the endpoints
        self.objects: list[Any] = []  # the same events as objects, for in-process readers (the persona)
        self.status = "running"
        self.notebook: str | None = None
        self._changed = threading.Condition()
        self._notify_loop = waiters
        self._decisions: queue.Queue[tuple[str, str]] = queue.Queue()
        self.pending_approval: str | None = None
        self.finished = False  # the worker thread is over (events complete)
        self.thread = threading.Thread(target=self._work, name=f"medagent-run-{run_id}", daemon=True)

    # ------------------------------------------------------------------ the worker
    def _work(self) -> None:
        try:
            for event in self.agent.run():
                self.objects.append(event)
                self._append(event.to_json())
                if event.kind == "finished":
                    self.status, self.notebook = event.status, event.notebook
        except Exception as exc:  # the loop reports its own failures; this is the last line of defence
            self._append({"kind": "finished", "status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                          "summary": "", "metrics": {}, "notebook": None, "reexecuted_ok": None, "headline": [],
                          "verified": "not run"})
            self.status = "failed"
        finally:
            self.executor.close()
            self.finished = True
            self._notify()

    def _append(self, event: dict[str, Any]) -> None:
        with self._changed:
            event["seq"] = len(self.events)
            self.events.append(event)
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()
        self._notify_loop()

    @property
    def done(self) -> bool:
        return self.finished

    # ------------------------------------------------------------------ control
    def approve(self, cell_id: str, source: str, concerns: list[str]) -> tuple[str, str]:
        """The Agent's approver: blocks the run's thread until the user decides (or stops)."""
        self.pending_approval = cell_id
        try:
            while True:
                decided_cell, (decision, edited) = self._decisions.get()
                if decided_cell in (cell_id, "*"):
                    return decision, edited if decision == "edit" else source
        finally:
            self.pending_approval = None

    def decide(self, cell_id: str, decision: str, source: str | None) -> None:
        if decision not in DECISIONS:
            raise RunError(400, f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
        if self.pending_approval != cell_id:
            raise RunError(409, f"cell {cell_id!r} is not waiting for approval"
                           + (f" (cell {self.pending_approval!r} is)" if self.pending_approval else ""))
        self._decisions.put((cell_id, (decision, source if source is not None else "")))

    def stop(self) -> None:
        self.agent.stop()
        self._decisions.put(("*", ("stop", "")))  # release a pending approval

    def summary(self, root: Path) -> dict[str, Any]:
        notebook = self.notebook or (str(self.agent.notebook_path) if self.agent.notebook_path.exists() else None)
        return {"run_id": self.id, "kernel_id": self.spec.kernel_id, "notebook_path": self.spec.notebook_path,
                "request": self.spec.request, "data_dir": self.spec.data_dir, "started": self.started,
                "status": self.status, "events": len(self.events), "mode": self.spec.mode, "isolated": self.spec.isolated,
                "backend": self.spec.options.backend, "verify": self.spec.options.verify,
                "options": to_json(self.spec.options),
                "notebook": api_path(notebook, root) if notebook else None,
                "pending_approval": self.pending_approval}


class RunManager:
    def __init__(self, root_dir: str, kernel_manager, loop: asyncio.AbstractEventLoop | None = None):
        self.root = Path(root_dir).resolve()
        self.kernels = kernel_manager
        self.loop = loop
        self.runs: dict[str, Run] = {}
        self._waiters: set[asyncio.Event] = set()  # one per coroutine in wait_for, set when any run changes
        self._starting: dict[str, tuple[RunRequest, asyncio.Future]] = {}  # run id -> its request, its Run to be

    def bind_loop(self) -> None:
        """Called from the server's coroutines: worker threads wake waiters through this loop."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()

    # ------------------------------------------------------------------ start
    async def start(self, spec: RunRequest) -> tuple[Run, bool]:
        """(the run, whether it is new). The same request again for a notebook whose run is still working
        or still starting (a double click on Start, a retried POST) gets that run back instead of a second
        one. The agent is built off the event loop: connecting to a kernel, installing the guard in it, or
        starting a sandboxed one takes seconds, and the server answers everyone else meanwhile."""
        self.bind_loop()
        if not spec.isolated and spec.kernel_id not in self.kernels:
            raise RunError(404, f"no kernel with id {spec.kernel_id!r}; open the notebook and start its kernel")
        # Each run still working or starting: its request, and the Run or the future that will hold it.
        active = [(r.spec, r) for r in self.runs.values() if not r.done] + list(self._starting.values())
        busy = [(s, held) for s, held in active if (
            (s.kernel_id == spec.kernel_id and not spec.isolated and not s.isolated)
            or (spec.isolated and s.isolated and s.notebook_path == spec.notebook_path))]
        if busy and busy[0][0] == spec:
            held = busy[0][1]
            return (held if isinstance(held, Run) else await asyncio.shield(held)), False
        if busy:
            where = "for this notebook" if spec.isolated else "in this kernel"
            name = busy[0][1].id if isinstance(busy[0][1], Run) else "(starting)"
            raise RunError(409, f"run {name} is still working {where}; stop it or wait for it to finish")
        notebook = self.resolve(spec.notebook_path)
        run_id = uuid.uuid4().hex[:12]
        starting = asyncio.get_running_loop().create_future()
        self._starting[run_id] = (spec, starting)
        try:
            km = None if spec.isolated else self.kernels.get_kernel(spec.kernel_id)
            build = asyncio.get_running_loop().run_in_executor(None, self._build, run_id, spec, notebook, km)
            try:
                run = await asyncio.shield(build)
            except asyncio.CancelledError:  # the chat reply was cancelled: the build's thread goes on
                build.add_done_callback(_let_go)
                raise
        except BaseException as exc:
            starting.set_exception(exc)
            starting.exception()  # read here: no "exception never retrieved" when nobody else waited
            raise
        finally:
            del self._starting[run_id]
        starting.set_result(run)
        self.runs[run_id] = run
        run.thread.start()
        return run, True

    def _build(self, run_id: str, spec: RunRequest, notebook: Path, km) -> Run:
        """The run's agent, on a worker thread (see ``start``)."""
        from jupyter_medagent.kernel import KernelClientExecutor, new_kernel_executor
        from jupyter_medagent.isolation.kernelspec import is_sandbox_kernel
        from jupyter_medagent.kernel.gateway import attach_gateway_kernel, is_gateway_kernel
        from jupyter_medagent.session import RunSetup, build_agent, refined_name

        setup = RunSetup(spec.request, spec.data_dir, notebook.parent, refined_name(notebook), spec.options,
                         kernel_elsewhere=km is not None and is_gateway_kernel(km))
        holder: dict[str, Run] = {}
        if spec.isolated:
            def make_executor(isolation):
                return new_kernel_executor(isolation, session_id=f"medagent-{run_id}")
        else:
            def make_executor(isolation):
                interrupt = lambda: self._interrupt(spec.kernel_id)  # noqa: E731
                if is_gateway_kernel(km):  # JupyterLab started with --gateway-url: the kernel is remote
                    return attach_gateway_kernel(km, f"medagent-{run_id}", interrupt,
                                                 guard=isolation.guard_policy(kernel_in_sandbox=False))
                return KernelClientExecutor(connection_file=km.connection_file, session_id=f"medagent-{run_id}",
                                            interrupt=interrupt,
                                            guard=isolation.guard_policy(kernel_in_sandbox=is_sandbox_kernel(km.kernel_name)))
        try:
            agent = build_agent(setup, make_executor, approver=lambda *a: holder["run"].approve(*a),
                                user_kernel=not spec.isolated,
                                user_kernel_sandboxed=km is not None and is_sandbox_kernel(km.kernel_name))
        except MedagentError as exc:
            raise RunError(400, str(exc)) from exc
        run = holder["run"] = Run(run_id, spec, agent, agent.executor, self._wake)
        return run

    def get(self, run_id: str) -> Run:
        if run_id not in self.runs:
            raise RunError(404, f"no run with id {run_id!r}")
        return self.runs[run_id]

    def resolve(self, api_path: str) -> Path:
        path = (self.root / api_path.lstrip("/")).resolve()
        if not path.is_relative_to(self.root):
            raise RunError(400, f"{api_path!r} is outside the server's root folder")
        return path

    # ------------------------------------------------------------------ waiting (server's event loop)
    def _wake(self) -> None:
        if self.loop is not None:
            try:
                self.loop.call_soon_threadsafe(self._wake_waiters)
            except RuntimeError:  # the loop is closed: the server has stopped, nobody waits
                pass

    def _wake_waiters(self) -> None:
        for changed in self._waiters:
            changed.set()

    async def wait_for(self, run: Run, seen: int, timeout: float) -> None:
        """Until the run has more than ``seen`` events, is done, or ``timeout`` passes: asleep in between, so
        a long run costs the server's event loop nothing."""
        self.bind_loop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        changed = asyncio.Event()
        self._waiters.add(changed)
        try:
            while len(run.events) <= seen and not run.done:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                changed.clear()  # checked and cleared on the loop's thread: no wake-up is lost in between
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except TimeoutError:
                    return
        finally:
            self._waiters.discard(changed)

    def _interrupt(self, kernel_id: str) -> None:
        """Interrupt through the server's kernel manager (its call may be a coroutine)."""
        result = self.kernels.interrupt_kernel(kernel_id)
        if inspect.isawaitable(result) and self.loop is not None:
            asyncio.run_coroutine_threadsafe(result, self.loop)

    def shutdown(self) -> None:
        for run in self.runs.values():
            if not run.done:
                run.stop()


def _let_go(build: asyncio.Future) -> None:
    """A run built for a start that was cancelled meanwhile: its kernel (its own, if isolated) is let go."""
    if not build.cancelled() and build.exception() is None:
        build.result().executor.close()


def api_path(path: str, root: Path) -> str:
    resolved = Path(path).resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(resolved)
