"""One place that turns what a user asked for into an Agent, for every front door.

The CLI, the ``%%medagent`` magic, the server extension (sidebar) and the Jupyter AI persona
each choose where cells run (an executor) and how approvals reach the user (an approver);
everything else (backend, judges, budgets, safety, isolation, output folder, redaction, data
folder, notebook path) is decided here, so the front doors cannot drift apart.

The output folder is the run's own: next to the notebook, named after it (``analysis_files/`` for
``analysis.ipynb``); it is the only place model-written code may write, and the working directory
of every kernel the run starts.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

from jupyter_medagent.agent.approval import ask_on_console
from jupyter_medagent.agent.narrate import describe
from jupyter_medagent.agent.protocols import Executor
from jupyter_medagent.agent.tools import Approver
from jupyter_medagent.contracts.errors import ConfigError, DataError
from jupyter_medagent.contracts.options import ISOLATION_MODES, RunOptions
from jupyter_medagent.isolation import KernelIsolation, KernelLimits, sandbox_problem
from jupyter_medagent.isolation.deid import deidentified_view
from jupyter_medagent.isolation import kernelspec
from jupyter_medagent.kernel import new_kernel_executor


@dataclass
class RunSetup:
    """One run to build: what is asked, on which data, where the refined notebook goes, and its options."""

    request: str
    data: str | None = None  # as the user wrote it; relative paths start at ``base_dir``
    base_dir: Path = field(default_factory=Path.cwd)  # the notebook's folder, or the shell's working directory
    notebook: str | None = None  # the refined notebook; relative paths start at ``base_dir``
    options: RunOptions = field(default_factory=RunOptions)
    kernel_elsewhere: bool = False  # the cells run in a kernel on another machine (a gateway kernel of the notebook's)


def kernel_limits(options: RunOptions) -> KernelLimits:
    """The limits of the run's kernels: unset means the default, 0 means none."""
    default = KernelLimits.default()
    return KernelLimits(default.memory_mb if options.kernel_memory is None else options.kernel_memory or None,
                        default.cpu_seconds if options.kernel_cpu is None else options.kernel_cpu or None)


def resolve_data(data: str | None, base_dir: Path) -> str | None:
    """The data folder as an absolute path; a relative one starts at ``base_dir``."""
    if not data:
        return None
    path = Path(data).expanduser()
    path = path if path.is_absolute() else Path(base_dir) / path
    if not path.is_dir():
        where = "" if Path(data).is_absolute() else f" (relative paths start at {base_dir})"
        raise DataError(path, f"no such folder{where}")
    return str(path.resolve())


def resolve_notebook(setup: RunSetup, default_name: str) -> Path:
    path = Path(setup.notebook or default_name).expanduser()
    return (path if path.is_absolute() else Path(setup.base_dir) / path).resolve()


def output_folder(notebook: Path, *, sandbox_kernel: bool = False) -> Path:
    """The run's own folder: next to the notebook, named after it; for cells in the "Python 3 (medagent
    sandbox)" kernel, inside the one folder that kernel may write (``medagent_output/`` beside the notebook)."""
    if sandbox_kernel:
        return notebook.parent / kernelspec.OUTPUT_FOLDER / f"{notebook.stem}_files"
    return notebook.with_name(f"{notebook.stem}_files")


def plan_isolation(mode: str, output_dir: Path, data_dir: str | None, limits: KernelLimits,
                   gateway: str | None = None) -> KernelIsolation:
    """What isolation the run's kernels get. ``auto`` takes the sandbox where bubblewrap works and
    says why not where it does not; ``sandbox`` insists on it. A gateway's kernels run on another
    machine, under its own rules: the guard watches model-written cells there."""
    if mode not in ISOLATION_MODES:
        raise ConfigError(f"unknown isolation {mode!r}; use one of {', '.join(ISOLATION_MODES)}")
    notice = None
    if gateway:
        if mode == "sandbox":
            raise ConfigError("isolation sandbox is not possible for kernels on a kernel gateway (they run elsewhere)")
        if mode == "auto":
            mode, notice = "guard", (f"Kernels run on the gateway at {gateway}, outside this machine's sandbox; the "
                                     "runtime guard watches model-written cells there.")
    elif mode in ("auto", "sandbox"):
        problem = sandbox_problem()
        if problem is None:
            mode = "sandbox"
        elif mode == "sandbox":
            raise ConfigError(f"isolation sandbox is not possible here: {problem}")
        else:
            mode = "guard"
            notice = (f"Kernels are not sandboxed: {problem}. Model-written cells run behind the runtime guard "
                      "only (install bubblewrap for the sandbox).")
    return KernelIsolation(mode, output_dir, data_dir, limits, notice, gateway)


def refined_name(notebook: Path | None) -> str:
    """The refined notebook's file name: after the user's notebook (``analysis-medagent.ipynb`` for
    ``analysis.ipynb``), the same for the sidebar and the magic; ``medagent.ipynb`` without one."""
    return f"{notebook.stem}-medagent.ipynb" if notebook else "medagent.ipynb"


def build_agent(setup: RunSetup, make_executor: Callable[[KernelIsolation], Executor], *,
                approver: Approver | None = None, default_notebook: str = "medagent.ipynb", user_kernel: bool = False,
                user_kernel_sandboxed: bool = False, on_live=None):
    """The Agent for ``setup``; cells run through ``make_executor(isolation)``.

    ``approver`` is how this front door asks the user about a cell; it is used in approve mode only.
    ``on_live`` receives a running cell's live events when the executor runs cells inline (the magic).
    ``user_kernel``: ``make_executor`` runs the cells in the user's own kernel (magic, sidebar);
    ``user_kernel_sandboxed``: that kernel is the "Python 3 (medagent sandbox)" kernel.

    A model backend's cells never run in a user's kernel outside the sandbox: they run in a kernel of
    the run's own, ``new_kernel_executor(isolation)`` (and not in the sandbox kernel when the data holds
    DICOM files, which only the sandboxes medagent starts show de-identified). Where that kernel cannot be
    sandboxed either, every model-written cell waits for the user's approval, whatever ``safety`` says.
    Raises MedagentError subclasses (unknown backend, missing key, missing folder) before any kernel is
    started or connected to.
    """
    from jupyter_medagent import backends  # looked up at call time, so tests can substitute make_backend
    from jupyter_medagent.contracts.budget import Budget
    from jupyter_medagent.agent.loop import Agent
    from jupyter_medagent.contracts.task import Task
    from jupyter_medagent.notebook import free_path
    from jupyter_medagent.safety import safety_for
    from jupyter_medagent.safety.redact import Redactor

    options = setup.options
    data = resolve_data(setup.data, setup.base_dir)
    requested = resolve_notebook(setup, default_notebook)
    notebook, renamed = free_path(requested)
    output_dir = output_folder(notebook, sandbox_kernel=user_kernel and user_kernel_sandboxed)
    backend = backends.make_backend(options.backend)
    judges = backends.make_judges(options.vlm_judge)
    isolation = plan_isolation(options.isolation, output_dir, data, kernel_limits(options), options.kernel_gateway)
    model_cells = getattr(backend, "name", "offline") != "offline"
    in_user_kernel = user_kernel and (user_kernel_sandboxed or not model_cells)
    if model_cells and in_user_kernel and data and deidentified_view(data):
        raise ConfigError(f"{data} holds DICOM files, which the \"Python 3 (medagent sandbox)\" kernel shows as they "
                          "are; run this from a plain Python kernel: a model's cells then run in a sandbox of the "
                          "run's own that shows them de-identified")
    sandboxed = user_kernel_sandboxed if in_user_kernel else isolation.sandboxed
    notices = []
    if model_cells and not sandboxed:
        where = isolation.notice or "Kernels are not sandboxed (isolation off)."
        notices.append(f"{where} A model writes the cells, so each one waits for your approval.")
    elif isolation.notice:
        notices.append(isolation.notice)
    if user_kernel and not in_user_kernel:
        kind = "a sandboxed kernel" if isolation.sandboxed else "a kernel"
        notices.append(f"A model writes the cells, so they run in {kind} of the run's own, not in this "
                       "notebook's kernel: variables are not shared (the \"Python 3 (medagent sandbox)\" kernel, "
                       "`medagent kernelspec install`, shares them).")
    reexecute = options.verify
    if reexecute and in_user_kernel and kernelspec.in_sandbox_kernel():
        reexecute = False  # no program, so no kernel, can be started from inside the sandbox
        notices.append("This kernel is the sandbox, where no other kernel can be started: the refined notebook is not "
                       "re-run to verify it (re-run it yourself, or run from a plain kernel).")
    if renamed:
        notices.append(f"{requested.name} already exists and is kept as it is; this run writes {notebook.name}.")
    safety = "approve" if model_cells and not sandboxed else options.safety
    gate, approve = safety_for(safety, output_dir=output_dir, cwd=output_dir, data_dir=data, approver=approver)
    task = Task(setup.request, data, str(output_dir), options.acceptance(),
                relative_paths=not (options.kernel_gateway or setup.kernel_elsewhere))
    made_output_dir = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    redactor = Redactor.for_run(data)
    executor = make_executor(isolation) if in_user_kernel or not user_kernel else new_kernel_executor(isolation)
    return Agent(task, backend, executor, judges=judges,
                 budget=Budget(max_steps=options.max_steps, max_cost_usd=options.max_cost),
                 approver=approve, safety=gate, notebook_path=notebook, reexecute=reexecute,
                 isolation=isolation, redactor=redactor, cell_timeout=options.cell_timeout,
                 on_kernel_death=options.on_kernel_death, notices=notices, skills=options.skills, on_live=on_live,
                 owns_output_dir=made_output_dir)


USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd")


def run_session(setup: RunSetup, quiet: bool) -> tuple[dict, object]:
    """Run one agent session in a kernel of its own, its progress on stderr unless ``quiet``, as ``medagent run``,
    the bench and the MCP ``solve`` tool do; returns (summary, backend)."""
    started = time.monotonic()
    agent = build_agent(setup, new_kernel_executor, approver=ask_on_console)
    backend, executor = agent.backend, agent.executor
    finished = None

    def on_sigint(signum, frame):
        """The first Ctrl-C stops the run cleanly (the notebook is kept, marked stopped); a second one quits."""
        if agent.stopped:
            raise KeyboardInterrupt
        print("medagent: stopping (Ctrl-C again to quit at once)...", file=sys.stderr, flush=True)
        agent.stop()

    calls = []  # tokens of each model call (judges' included), in order: how the context grows step by step
    # Only a main thread may handle signals (a Ray task or a thread pool may run this elsewhere).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if main_thread else None
    try:
        for event in agent.run():
            line = describe(event)
            if line and not quiet:
                show_progress(event, line) if event.kind == "progress" else print(line, file=sys.stderr, flush=True)
            if event.kind == "usage":
                calls.append({k: getattr(event, k) for k in USAGE_FIELDS})
            finished = event if event.kind == "finished" else finished
    except KeyboardInterrupt:
        for event in agent.abandon("interrupted twice by the user"):
            finished = event
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
        executor.close()
    seconds = time.monotonic() - started
    metrics = dict(finished.metrics)
    training = float(metrics.get("training_seconds", 0.0))
    summary = {
        "status": finished.status, "reason": finished.reason, "summary": finished.summary,
        "steps": agent.turns, "tool_calls": len(agent.history), "seconds": round(seconds, 1),
        "time_split": {"training_seconds": round(training, 1), "other_seconds": round(seconds - training, 1),
                       "note": "training_seconds counts the agent's own training run; re-execution retrains"},
        "notebook": finished.notebook, "reexecuted_ok": finished.reexecuted_ok, "verified": finished.verified,
        "headline": finished.headline,
        "backend": backend.name, "model": backend.model, "metrics": metrics,
        "tokens": agent.tokens, "cost_usd": round(agent.cost_usd, 6),
        "usage": {k: sum(c[k] for c in calls) for k in USAGE_FIELDS if k != "cost_usd"}, "calls": calls,
        "dice": {k[5:]: v for k, v in metrics.items() if k.startswith("dice_") and k != "dice_mean"},
        "dice_mean": metrics.get("dice_mean"), "ef_abs_error": metrics.get("ef_abs_error"),
        "repairs": list(getattr(backend, "repairs", [])),
    }
    return summary, backend


def show_progress(event, line: str) -> None:
    """A progress line rewritten in place on a terminal; in a log, only where the work ends."""
    if sys.stderr.isatty():
        print("\r" + line, end="\n" if event.done >= event.total else "", file=sys.stderr, flush=True)
    elif event.done >= event.total:
        print(line, file=sys.stderr, flush=True)
