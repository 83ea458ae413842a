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

from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

from jupyter_medagent.contracts.protocols import Executor
from jupyter_medagent.agent.skills import SKILL_LEVELS
from jupyter_medagent.agent.tools import Approver
from jupyter_medagent.errors import ConfigError, DataError
from jupyter_medagent.isolation import ISOLATION_MODES, KernelIsolation, KernelLimits, sandbox_problem
from jupyter_medagent.isolation.deid import deidentified_view
from jupyter_medagent.isolation import kernelspec


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
    safety: str | None = None  # enforce (None), approve or off; a model's cells outside a sandbox: always approve
    acceptance: dict[str, list] = field(default_factory=dict)
    reexecute: bool = True  # verify the refined notebook by re-running it; False: it is marked "not verified"
    isolation: str = "auto"  # kernels the run starts: auto (sandbox where bubblewrap works, else guard), sandbox, guard, off
    cell_timeout: float | None = None  # seconds a cell may run before it is interrupted; None: no limit
    on_kernel_death: str = "fail"  # fail: end the run; restart: a fresh kernel, the kept cells replayed
    limits: KernelLimits = field(default_factory=KernelLimits.default)
    kernel_gateway: str | None = None  # URL of a Jupyter Kernel/Enterprise Gateway for the kernels a run starts
    skills: str = "all"  # skill tools a model backend gets: none, reference (toolkit_reference) or all (+ propose_recipe)
    kernel_elsewhere: bool = False  # the cells run in a kernel on another machine (a gateway kernel of the notebook's)


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


def build_agent(options: RunOptions, make_executor: Callable[[KernelIsolation], Executor], *,
                approver: Approver | None = None, default_notebook: str = "medagent.ipynb", user_kernel: bool = False,
                user_kernel_sandboxed: bool = False, on_live=None):
    """The Agent for ``options``; cells run through ``make_executor(isolation)``.

    ``approver`` is how this front door asks the user about a cell; it is used in approve mode only.
    ``on_live`` receives a running cell's live events when the executor runs cells inline (the magic).
    ``user_kernel``: ``make_executor`` runs the cells in the user's own kernel (magic, sidebar);
    ``user_kernel_sandboxed``: that kernel is the "Python 3 (medagent sandbox)" kernel.

    A model backend's cells never run in a user's kernel outside the sandbox: they run in a kernel of
    the run's own, ``isolation.new_kernel_executor()`` (and not in the sandbox kernel when the data holds
    DICOM files, which only the sandboxes medagent starts show de-identified). Where that kernel cannot be
    sandboxed either, every model-written cell waits for the user's approval, whatever ``safety`` says.
    Raises MedagentError subclasses (unknown backend, missing key, missing folder) before any kernel is
    started or connected to.
    """
    from jupyter_medagent import backends  # looked up at call time, so tests can substitute make_backend
    from jupyter_medagent.agent.budget import Budget
    from jupyter_medagent.agent.loop import Agent
    from jupyter_medagent.agent.task import Task
    from jupyter_medagent.notebook import free_path
    from jupyter_medagent.safety import safety_for
    from jupyter_medagent.safety.redact import Redactor

    if options.on_kernel_death not in ("fail", "restart"):
        raise ConfigError(f"on_kernel_death must be fail or restart, not {options.on_kernel_death!r}")
    if options.skills not in SKILL_LEVELS:
        raise ConfigError(f"skills must be one of {', '.join(SKILL_LEVELS)}, not {options.skills!r}")
    data = resolve_data(options.data, options.base_dir)
    requested = resolve_notebook(options, default_notebook)
    notebook, renamed = free_path(requested)
    output_dir = output_folder(notebook, sandbox_kernel=user_kernel and user_kernel_sandboxed)
    backend = backends.make_backend(options.backend)
    judges = backends.make_judges(options.vlm_judge)
    isolation = plan_isolation(options.isolation, output_dir, data, options.limits, options.kernel_gateway)
    model_cells = backend.model_written
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
    reexecute = options.reexecute
    if reexecute and in_user_kernel and kernelspec.in_sandbox_kernel():
        reexecute = False  # no program, so no kernel, can be started from inside the sandbox
        notices.append("This kernel is the sandbox, where no other kernel can be started: the refined notebook is not "
                       "re-run to verify it (re-run it yourself, or run from a plain kernel).")
    if renamed:
        notices.append(f"{requested.name} already exists and is kept as it is; this run writes {notebook.name}.")
    safety = "approve" if model_cells and not sandboxed else options.safety or "enforce"
    gate, approve = safety_for(safety, output_dir=output_dir, cwd=output_dir, data_dir=data, approver=approver)
    task = Task(options.request, data, str(output_dir), options.acceptance,
                relative_paths=not (options.kernel_gateway or options.kernel_elsewhere))
    made_output_dir = not output_dir.exists()
    output_dir.mkdir(parents=True, exist_ok=True)
    redactor = Redactor.for_run(data)
    executor = make_executor(isolation) if in_user_kernel or not user_kernel else isolation.new_kernel_executor()
    return Agent(task, backend, executor, judges=judges,
                 budget=Budget(max_steps=options.max_steps, max_cost_usd=options.max_cost),
                 approver=approve, safety=gate, notebook_path=notebook, reexecute=reexecute,
                 isolation=isolation, redactor=redactor, cell_timeout=options.cell_timeout,
                 on_kernel_death=options.on_kernel_death, notices=notices, skills=options.skills, on_live=on_live,
                 owns_output_dir=made_output_dir)
