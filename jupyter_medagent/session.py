"""One place that turns what a user asked for into an Agent, for every front door.

The CLI, the ``%%medagent`` magic, the server extension (sidebar) and the Jupyter AI persona
each choose where cells run (an executor) and how approvals reach the user (an approver);
everything else (backend, judges, budgets, safety, data folder, notebook path) is built here,
so the front doors cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from jupyter_medagent.agent.protocols import Executor
from jupyter_medagent.agent.tools import Approver
from jupyter_medagent.errors import DataError


@dataclass
class RunOptions:
    request: str
    data: str | None = None  # as the user wrote it; relative paths start at ``base_dir``
    base_dir: Path = field(default_factory=Path.cwd)  # the notebook's folder, or the shell's working directory
    notebook: str | None = None  # the refined notebook; relative paths start at ``base_dir``
    backend: str | None = None  # selector; None: the config file's default, else offline
    vlm_judge: str | None = None
    max_steps: int = 80
    max_cost: float | None = None  # USD, a hard stop for model calls
    safety: str = "enforce"  # enforce, approve or off
    acceptance: dict[str, list] = field(default_factory=dict)
    reexecute: bool = True
    kernel_gateway: str | None = None  # URL of a Jupyter Kernel/Enterprise Gateway for the kernels a run starts


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


def resolve_notebook(options: RunOptions, default_name: str) -> Path:
    path = Path(options.notebook or default_name).expanduser()
    return (path if path.is_absolute() else Path(options.base_dir) / path).resolve()


def start_kernel(options: RunOptions, folder: Path):
    """A new kernel for a run that brings its own (CLI, persona): on the kernel gateway when one is named."""
    from jupyter_medagent.kernel import KernelClientExecutor

    if options.kernel_gateway:
        from jupyter_medagent.kernel.gateway import start_gateway_kernel

        return start_gateway_kernel(options.kernel_gateway, cwd=folder)
    return KernelClientExecutor(cwd=folder)


def verification_kernel(options: RunOptions):
    """What makes the kernel manager the refined notebook is re-run in: the gateway's, when one is named."""
    if not options.kernel_gateway:
        return None
    from jupyter_medagent.kernel.gateway import gateway_kernel_manager

    return lambda: gateway_kernel_manager(options.kernel_gateway)


def build_agent(options: RunOptions, make_executor: Callable[[Path], Executor], *, approver: Approver | None = None,
                default_notebook: str = "medagent.ipynb"):
    """The Agent for ``options``; cells run through ``make_executor(notebook_folder)``.

    ``approver`` is how this front door asks the user about a cell; it is used in approve mode only.
    Raises MedagentError subclasses (unknown backend, missing key, missing folder) before any kernel is
    started or connected to.
    """
    from jupyter_medagent import backends  # looked up at call time, so tests can substitute make_backend
    from jupyter_medagent.agent.budget import Budget
    from jupyter_medagent.agent.loop import Agent
    from jupyter_medagent.agent.task import Task
    from jupyter_medagent.safety import safety_for

    data = resolve_data(options.data, options.base_dir)
    notebook = resolve_notebook(options, default_notebook)
    backend = backends.make_backend(options.backend)
    judges = backends.make_judges(options.vlm_judge)
    gate, approve = safety_for(options.safety, output_dir=notebook.parent, cwd=options.base_dir, data_dir=data,
                               approver=approver)
    task = Task(options.request, data, str(notebook.parent), options.acceptance)
    notebook.parent.mkdir(parents=True, exist_ok=True)
    executor = make_executor(notebook.parent)
    return Agent(task, backend, executor, judges=judges,
                 budget=Budget(max_steps=options.max_steps, max_cost_usd=options.max_cost),
                 approver=approve, safety=gate, notebook_path=notebook, reexecute=options.reexecute,
                 verification_kernel=verification_kernel(options))
