"""Kernels the project starts: bubblewrap around a launcher that sets resource limits, IPC sockets in a
private folder, an environment built from an allow-list.

jupyter_client launches what a kernel spec's argv says (``KernelManager.kernel_cmd`` is ignored), so
each kernel gets a spec of its own, served by a one-spec KernelSpecManager; its LocalProvisioner does
the launching, and interrupts travel as control messages (the sandboxed kernel runs in a session of
its own, where a process-group signal would not reach it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache

from jupyter_client import AsyncKernelManager, KernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

from jupyter_medagent.isolation.deid import DeidView, cache_root, deidentified_view

# Variables a kernel may inherit; everything else (API keys, tokens, cloud credentials) stays out.
ENV_ALLOWED = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ", "PYTHONPATH", "VIRTUAL_ENV",
               "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "MPLBACKEND",
               "NVIDIA_VISIBLE_DEVICES", "TORCH_HOME", "NUMBA_CACHE_DIR")
# Hidden inside the sandbox: home folders (keys, tokens, other kernels' connection files), the host's
# temporary files, and files holding password hashes or host keys; ``hidden_dirs()`` adds the places
# this host keeps such things elsewhere (Jupyter's runtime folder, medagent's config and caches).
HIDDEN_DIRS = ("/home", "/root", "/tmp", "/var/tmp", "/run", "/etc/ssh")
HIDDEN_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")
SANDBOX_HOME = "/tmp/home"
# What a kernel needs of the host besides its Python, the data and its output folder (bound read-only).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")


def python_module(module: str) -> list[str]:
    """The command running ``module`` with this Python. ``-P``: the working directory (a notebook or output
    folder a kernel could write) is not put first on sys.path, so a planted ``jupyter_medagent/`` or
    ``ipykernel_launcher.py`` there is never imported."""
    return [sys.executable, "-P", "-m", module]


@dataclass(frozen=True)
class KernelLimits:
    """Resource limits set inside each kernel the project starts (None: no limit)."""

    memory_mb: int | None = None  # address space (RLIMIT_AS)
    cpu_seconds: int | None = None  # processor time of the kernel process (RLIMIT_CPU)

    @classmethod
    def default(cls) -> KernelLimits:
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        return cls(memory_mb=int(total_mb * 0.8), cpu_seconds=4 * 3600)

    def launcher_args(self) -> list[str]:
        args = []
        if self.memory_mb:
            args += ["--memory-mb", str(self.memory_mb)]
        if self.cpu_seconds:
            args += ["--cpu-seconds", str(self.cpu_seconds)]
        return args


@lru_cache(maxsize=1)
def sandbox_problem() -> str | None:
    """Why bubblewrap cannot sandbox kernels on this machine, or None when it can (probed once)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    # The kernels' own mounts: a Python installed under a hidden folder (a virtualenv in /home or /tmp) must run.
    probe = [bwrap, *_mounts(), "--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session",
             "--cap-drop", "ALL", "--", sys.executable, "-P", "-c", "pass"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not run ({exc})"
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        return f"bwrap cannot create namespaces here ({reason})"
    return None


def kernel_environment(*, home: str | None = None) -> dict[str, str]:
    """The environment of a kernel the project starts: allow-listed variables only."""
    env = {k: v for k, v in os.environ.items() if k in ENV_ALLOWED or k.startswith("LC_")}
    env.setdefault("PATH", os.defpath)
    env["HOME"] = home or os.path.expanduser("~")
    env["PYTHONNOUSERSITE"] = "1" if home else env.get("PYTHONNOUSERSITE", "")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # ipykernel's debugger warns on frozen modules otherwise
    return {k: v for k, v in env.items() if v != ""}


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def hidden_dirs() -> list[str]:
    """HIDDEN_DIRS and, wherever they are, the Jupyter runtime folder (the server's and every kernel's
    connection files) and medagent's cache (the de-identification mappings)."""
    from jupyter_core.paths import jupyter_runtime_dir

    extra = {os.path.realpath(p) for p in (jupyter_runtime_dir(), cache_root())}
    return [*HIDDEN_DIRS, *sorted(p for p in extra if os.path.isdir(p) and not _under(p, HIDDEN_DIRS))]


def hidden_files() -> list[str]:
    """HIDDEN_FILES and medagent's config file (it may hold API keys) wherever $MEDAGENT_CONFIG puts it."""
    from jupyter_medagent.backends.config import config_path

    config = os.path.realpath(config_path())
    extra = [config] if os.path.isfile(config) and not _under(config, hidden_dirs()) else []
    return [*HIDDEN_FILES, *extra]


def _python_paths() -> list[str]:
    """Where this Python and its packages live (bound read-only into every sandbox, wherever they are)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(p for p in sys.path if p)
    paths.update(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
    # A hidden folder itself (a script run from /tmp puts /tmp on sys.path) is never bound back: that would
    # expose all of it, read-only over the private one, so nothing could write a temporary file.
    hidden = hidden_dirs()
    return sorted(p for p in (os.path.realpath(p) for p in paths)
                  if os.path.exists(p) and p not in hidden)


def _mounts() -> list[str]:
    """The system's programs and libraries read-only (not the whole of ``/``: raw DICOM or anything else
    elsewhere on the host stays out), this Python with its packages read-only wherever they are, the
    hidden folders and files emptied (also where they lie under a Python path), and a private home."""
    argv = []
    for path in SYSTEM_DIRS:
        if os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    argv += ["--dev", "/dev", "--proc", "/proc"]
    hidden = hidden_dirs()
    python = _python_paths()
    for path in python:  # first, so that a hidden folder inside one (Jupyter's runtime folder) is emptied after
        if not _under(path, hidden):
            argv += ["--ro-bind", path, path]
    for folder in hidden:
        if os.path.isdir(folder):
            argv += ["--tmpfs", folder]
    argv += ["--dir", SANDBOX_HOME]
    for path in python:  # a Python installed under a hidden folder (a virtualenv in /root or /tmp) must run
        if _under(path, hidden):
            argv += ["--ro-bind", path, path]
    for path in hidden_files():
        if os.path.exists(path):
            argv += ["--ro-bind", "/dev/null", path]
    return argv


def data_view(data_dir: str, *, writable: str) -> DeidView | None:
    """The de-identified view of ``data_dir`` for a sandbox whose ``writable`` folder may lie inside it (that
    folder, and this Python's, are shown as they are); no link in the data brings in what the sandbox hides."""
    return deidentified_view(data_dir, passthrough=[writable, *_python_paths()],
                             hidden=[*hidden_dirs(), *hidden_files()])


def writable_folder_problem(folder: str) -> str | None:
    """Why a sandbox may not write ``folder``, or None: it must not hold what a later Python on the host
    runs (a sys.path entry, a virtualenv or this Python's prefix, this package: a planted ``.pth`` file or
    module would run outside the sandbox) nor what the sandbox hides (home, /, temporary files)."""
    folder = os.path.realpath(folder)
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    held = [p for p in (*sys.path, sys.prefix, sys.base_prefix, sys.exec_prefix, package)
            if p and _under(os.path.realpath(p), [folder])]
    held += [p for p in (sys.prefix, sys.base_prefix, package) if _under(folder, [os.path.realpath(p)])]
    if held:
        return (f"the sandbox may not write {folder}: it holds or lies in Python code the host runs ({held[0]}); "
                "choose a folder outside the virtualenv and the package")
    home = os.path.realpath(os.path.expanduser("~"))
    if folder == home or any(_under(h, [folder]) for h in [*hidden_dirs(), "/"]):
        return (f"the sandbox may not write {folder}: it holds folders the sandbox hides (home, temporary files, "
                "Jupyter's runtime folder); use a project folder of its own")
    return None


def bwrap_argv(*, output_dir: str, data_dir: str | None, runtime_dir: str, environment: dict[str, str],
               data_view: DeidView | None = None, cwd: str | None = None) -> list[str]:
    """bubblewrap's arguments: the system read-only (``_mounts``), private /tmp and home, the output folder and the kernel's
    socket folder writable, the data read-only (its de-identified ``data_view`` where it holds DICOM
    files), the working directory ``cwd`` (default the output folder), no network, its own pid namespace
    and session, and no capabilities (as root too: without ``--cap-drop ALL`` a root kernel could remount
    ``/`` writable). Raises ConfigError for an output folder ``writable_folder_problem`` refuses."""
    from jupyter_medagent.contracts.errors import ConfigError

    problem = writable_folder_problem(output_dir)
    if problem:
        raise ConfigError(problem)
    argv = [shutil.which("bwrap") or "bwrap", *_mounts()]
    data_binds = data_view.bwrap_args() if data_view else ["--ro-bind", data_dir, data_dir] if data_dir else []
    argv += data_binds + ["--bind", output_dir, output_dir, "--bind", runtime_dir, runtime_dir]
    if data_dir and _under(data_dir, [output_dir]):  # data inside the output folder stays read-only
        argv += data_binds
    argv += ["--chdir", cwd or output_dir, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
             "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    for key, value in environment.items():
        argv += ["--setenv", key, value]
    return argv + ["--"]


class _OneSpec(KernelSpecManager):
    """Serves the one kernel spec a sandboxed or guarded kernel was built with."""

    def __init__(self, spec: KernelSpec, **kwargs):
        super().__init__(**kwargs)
        self._spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self._spec


LAUNCH_LOG = "launcher-stderr.log"  # in the host-only part of a kernel's runtime folder
LAUNCH_LOG_READ = 64 * 1024  # the tail of it that is read back


class _ProjectKernel:
    """Launches with the allow-listed environment (whoever starts it: our executor or nbclient), its
    stderr into a file only the host can reach, and removes its runtime folder with the kernel.

    ``runtime_folder`` is the host's; the kernel sees only its ``sockets`` sub-folder (connection file and
    IPC sockets), so nothing the kernel can write or link is read back on the host, only the stderr file
    it holds open."""

    runtime_folder: str = ""
    launch_env: dict[str, str] = {}
    _stderr = None

    async def _async_pre_start_kernel(self, **kwargs):
        kwargs["env"] = dict(self.launch_env)
        if self.runtime_folder:
            self._close_stderr()
            fd = os.open(os.path.join(self.runtime_folder, LAUNCH_LOG),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            self._stderr = kwargs["stderr"] = os.fdopen(fd, "wb")
        return await super()._async_pre_start_kernel(**kwargs)

    def launch_refusal(self) -> str | None:
        """Why the launcher refused to start the kernel (isolation/launch.py says so on stderr and exits), or
        None while it runs or when it said nothing of the kind."""
        from jupyter_medagent.isolation.launch import REFUSAL_PREFIX  # not at the top: the launcher runs as -m

        process = getattr(getattr(self, "provisioner", None), "process", None)
        if not self.runtime_folder or process is None or process.poll() is None:
            return None
        try:
            fd = os.open(os.path.join(self.runtime_folder, LAUNCH_LOG), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as log:
            size = os.fstat(log.fileno()).st_size
            log.seek(max(0, size - LAUNCH_LOG_READ))
            tail = log.read(LAUNCH_LOG_READ).decode("utf-8", "replace")
        said = [line.split(REFUSAL_PREFIX, 1)[1] for line in tail.splitlines() if REFUSAL_PREFIX in line]
        return f"refusing to start: {said[-1].strip()[:2000]}" if said else None

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart and self.runtime_folder:
            self._close_stderr()
            shutil.rmtree(self.runtime_folder, ignore_errors=True)


class ProjectKernelManager(_ProjectKernel, KernelManager):
    pass


class AsyncProjectKernelManager(_ProjectKernel, AsyncKernelManager):
    """For nbclient, which drives its kernel from a coroutine."""


def kernel_manager(*, sandboxed: bool, output_dir: str | os.PathLike, data_dir: str | None,
                   limits: KernelLimits, guard_policy: dict | None = None,
                   armed_always: bool = False, asynchronous: bool = False) -> KernelManager:
    """A manager for a new kernel: in bubblewrap when ``sandboxed``, else a plain process; both through
    the launcher (limits, no program may be started, optional guard installed at start) and IPC
    sockets in a private folder."""
    from jupyter_medagent.contracts.errors import ConfigError

    output_dir = os.path.realpath(output_dir)
    data_dir = os.path.realpath(data_dir) if data_dir else None
    problem = writable_folder_problem(output_dir) if sandboxed else None
    if problem:
        raise ConfigError(problem)
    host_runtime = tempfile.mkdtemp(prefix="medagent-kernel-")
    runtime = os.path.join(host_runtime, "sockets")  # the kernel's part of it
    os.mkdir(runtime, 0o700)
    launcher = [*python_module("jupyter_medagent.isolation.launch"), *limits.launcher_args()]
    if not sandboxed:
        launcher.append("--no-sandbox")
    if guard_policy is not None:
        launcher += ["--guard", json.dumps(guard_policy)] + (["--armed"] if armed_always else [])
    launcher += ["--", "-f", "{connection_file}"]
    if sandboxed:
        # JPY_PARENT_PID=1: the kernel's parent is bwrap's init; --die-with-parent ends it with us.
        environment = {**kernel_environment(home=SANDBOX_HOME), "JPY_PARENT_PID": "1"}
        argv = bwrap_argv(output_dir=output_dir, data_dir=data_dir, runtime_dir=runtime, environment=environment,
                          data_view=data_view(data_dir, writable=output_dir) if data_dir else None) + launcher
        env = kernel_environment()
    else:
        argv, env = launcher, kernel_environment()
    spec = KernelSpec(argv=argv, env={}, display_name="Python 3 (medagent)", language="python",
                      interrupt_mode="message", metadata={})
    manager_class = AsyncProjectKernelManager if asynchronous else ProjectKernelManager
    manager = manager_class(kernel_name="medagent", kernel_spec_manager=_OneSpec(spec), transport="ipc",
                                   connection_file=os.path.join(runtime, "kernel.json"))
    manager.runtime_folder = host_runtime
    manager.launch_env = env
    return manager
