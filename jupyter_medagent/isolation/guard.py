"""The runtime guard: a Python audit hook in every kernel the agent writes into.

Self-contained (standard library only): executors send this file's source to kernels that may live
in another environment, and ``install`` is also called by the sandbox's kernel launcher.

What it refuses while guarded: process creation, network sockets and name lookups, ctypes used
directly by model code, writes, deletes, renames, links and permission changes outside the run's
writable folders or inside protected ones (the data), reads of secret files, ``os.chdir``,
environment changes, imports of pip, and the introspection that could reach the hook's own state
(``gc.get_objects``/``get_referrers``/``get_referents``, ``sys.settrace``/``setprofile``).
Paths are resolved by the operating system at the moment of the call (``O_PATH`` plus
``/proc/self/fd``), so aliases, ``getattr``, ``importlib``, ``pickle``, symlinks and relative
paths all meet the same check.

When it is guarded:
- armed: from the moment IPython compiles a cell carrying ``MARKER`` (the executors append it to
  every cell they run for the agent) until IPython compiles a release cell whose token hashes to
  the one the marked cell announced; the token exists only in the executor until then, so model
  code cannot end the window early. Every thread is guarded while armed.
- afterwards, for code the agent wrote: every frame compiled from a marked cell stays guarded
  whenever it runs (functions the agent defined and the user calls later), and so does every
  thread that was born while armed.

- code the agent compiles or runs through the standard library (``codeop``, ``runpy``, ``exec`` of a
  code object, a module or .pyc it wrote into a writable folder) is the agent's too.
- IPython event callbacks, input and AST transformers, display formatters and custom exception
  handlers that a marked cell added are removed at its release (libraries' own functions stay).
- callbacks a marked cell queued on the kernel's event loops (asyncio ``call_soon``/``call_later``/
  ``call_at``, tornado's ``add_callback``/``call_later``, on the cells' loop and on the other threads'
  loops tornado knows) are cancelled at its release, and so are tasks it started on the cells' loop; the
  kernel's own wakeups stay. A thread it started (``threading.Timer`` included) stays tainted.

Defence in depth, not a boundary (the sandbox is): the hook and its state live in closures nothing
else references, bound to private copies of this module's globals and the builtins; a refusal is
raised from a frame without globals that holds only the error, and frame access from code that runs
in the middle of a decision (finalisers, gc callbacks) is refused. A Python signal handler set by
model code still receives the interrupted frame, which may be one of the hook's. The hook cannot be
removed (``sys.addaudithook`` has no inverse). Configuration and status go through custom audit events.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from types import CodeType, FunctionType, MappingProxyType, MethodType

# Spelt in two pieces: this file's own source (compiled in kernels) must not carry the marker.
MARKER = "# [medagent] " + "model-written cell"
RELEASE = "# [medagent] " + "release"
PING = "medagent.guard.ping"
CONFIGURE = "medagent.guard.configure"
ARM = "medagent.guard.arm"
REFUSAL = "[medagent guard]"

# Events decided on every call; everything else returns at the first line of the hook.
_PROCESS = frozenset({"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "subprocess.Popen",
            "os.startfile", "pty.spawn"})
_NETWORK = frozenset({"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
            "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.getnameinfo",
            "urllib.Request", "http.client.connect", "ftplib.connect", "smtplib.connect", "poplib.connect",
            "imaplib.open", "nntplib.connect", "telnetlib.Telnet.open", "webbrowser.open"})
_INTROSPECTION = frozenset({"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile",
                            "sys._current_frames"})
# Frame access the hook never needs itself: refused to code that runs in the middle of the hook
# (a finaliser or a gc callback), which could otherwise walk up to the hook's frames.
_FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})
_CTYPES = frozenset({"ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function", "ctypes.cdata",
           "ctypes.cdata/buffer", "ctypes.addressof"})
_INSTALLERS = ("pip", "ensurepip", "conda", "mamba", "micromamba", "uv")
# (event, index of the path, index of its dir_fd or None, follow the last symlink)
_ONE_PATH = MappingProxyType({"os.remove": (0, 1, False), "os.rmdir": (0, 1, False), "os.mkdir": (0, 2, False),
             "os.chmod": (0, 2, True), "os.chown": (0, 3, True), "os.utime": (0, 3, True), "os.truncate": (0, None, True),
             "os.chflags": (0, None, True), "os.lchflags": (0, None, False), "os.lchmod": (0, None, False),
             "os.setxattr": (0, None, True), "os.removexattr": (0, None, True), "shutil.rmtree": (0, 1, False),
             "shutil.chown": (0, None, True), "shutil.unpack_archive": (1, None, True), "shutil.make_archive": (0, None, True),
             "os.mkfifo": (0, 2, False), "os.mknod": (0, 3, False), "sqlite3.connect": (0, None, True),
             "shutil.copytree": (1, None, True), "shutil.move": (1, None, True)})
_WATCHED = (_PROCESS | _NETWORK | _INTROSPECTION | _CTYPES | frozenset(_ONE_PATH)
            | {"compile", "exec", "open", "os.rename", "os.link", "os.symlink", "os.chdir", "os.putenv", "os.unsetenv",
               "os.kill", "os.killpg", "import", "code.__new__", "marshal.loads", "socket.__new__", "sys._getframe",
               "object.__getattr__", "sqlite3.connect/handle", PING, CONFIGURE, ARM})
SECRET_NAMES = (".ssh", ".aws", ".azure", ".gnupg", ".netrc", ".pgpass", ".docker", ".kube", ".git-credentials",
                ".pypirc", ".npmrc", ".bash_history", ".zsh_history", ".python_history", ".config/gcloud",
                ".config/medagent", ".local/share/jupyter/runtime", ".ipython/profile_default/history.sqlite")


class GuardRefusal(PermissionError):
    """Raised inside a guarded cell: an OSError, so libraries treat it like any denied operation."""


def policy(writable, protected=(), secrets=None, tmp: str | None = "private") -> dict:
    """The guard's configuration as JSON-ready data: folders model code may write to, folders it may
    never change (the data), files it may not read. ``tmp`` is where ``tempfile`` points while armed
    (and is writable): "private" makes a fresh folder in the kernel, None leaves tempfile alone."""
    home = os.path.expanduser("~")
    secrets = [os.path.join(home, name) for name in SECRET_NAMES] if secrets is None else list(secrets)
    return {"writable": [str(p) for p in writable], "protected": [str(p) for p in protected], "secrets": secrets,
            "tmp": tmp}


def token_pair() -> tuple[str, str]:
    """A release token and the hash a marked cell announces for it."""
    token = os.urandom(16).hex()
    return token, hashlib.sha256(token.encode()).hexdigest()


def mark(code: str, token_hash: str) -> str:
    """The cell as the kernel receives it: its code, then the marker announcing the release hash."""
    return f"{code}\n{MARKER} {token_hash}\n"


def release_cell(token: str) -> str:
    return f"{RELEASE} {token}\n"


def install_code(config: dict) -> str:
    """A cell that installs (or reconfigures) the guard in a kernel from this file's source, so the
    kernel need not have jupyter_medagent installed; it prints what ``install`` returned."""
    with open(__file__, encoding="utf-8") as handle:
        source = handle.read()
    return (f"def _medagent_guard():\n    namespace = {{'__name__': 'medagent_guard'}}\n"
            f"    exec(compile({source!r}, '<medagent-guard>', 'exec'), namespace)\n"
            f"    return namespace['install']({config!r})\n"
            "print(_medagent_guard())\ndel _medagent_guard\n")


def install(config: dict, *, armed_always: bool = False) -> str:
    """Install the hook once per process; later calls reconfigure it (allowed only while unguarded).
    Returns "installed", "configured" or "refused"."""
    box: list = []
    sys.audit(PING, box)
    if box:
        try:
            sys.audit(CONFIGURE, json.dumps(config))
        except PermissionError:
            return "refused"
        return "configured"
    sys.addaudithook(_private(_make_hook)(config, armed_always))
    return "installed"


def watch_model_code(writable, protected=()) -> str:
    """Arm the guard in this process for good: every cell from now on is watched as a model-written one
    (writes only into ``writable``, nothing changed in ``protected``, no processes, no network), until the
    kernel restarts. The first cell of a notebook a model wrote calls it, so a cell that behaves only
    while medagent watches is still watched when the notebook is re-run anywhere else. Arming is
    one-way: nothing a later cell does can release it. Returns what ``install`` did."""
    status = install(policy(writable, protected))
    sys.audit(ARM)
    return status


def _private(function):
    """``function`` bound to a copy of this module's globals and of the builtins taken now: model code that
    rebinds ``guard.MARKER`` or ``builtins.any`` later changes names the hook no longer reads."""
    import builtins

    namespace = dict(function.__globals__)
    namespace["__builtins__"] = dict(vars(builtins))
    return FunctionType(function.__code__, namespace, function.__name__)


def _hook_template(event, args, decide=None):
    """The audit hook itself, rebuilt with no globals and only ``decide`` bound: a refusal's traceback
    ends in this frame, and by the time it raises the frame holds the error and nothing else."""
    error = decide(event, args)
    if error is not None:
        del event, args, decide
        raise error


def _make_hook(config: dict, armed_always: bool):
    """The hook, with everything it relies on bound now: model code may rebind module attributes
    (``os.readlink``, ``threading.get_native_id``...) but not these references."""
    import _thread
    import pathlib
    import posix
    import re
    import stat
    import tempfile

    getframe, native_id, lstat, readlink, fsopen, close, getcwd, listdir, statvfs = (
        sys._getframe, _thread.get_native_id, posix.lstat, posix.readlink, posix.open, posix.close, posix.getcwd,
        posix.listdir, posix.statvfs)
    st_rdonly = posix.ST_RDONLY
    realpath, normpath, mkdtemp = os.path.realpath, os.path.normpath, tempfile.mkdtemp
    path_str, path_fspath = pathlib.PurePath.__str__, pathlib.PurePath.__fspath__
    o_path = getattr(posix, "O_PATH", 0)
    write_flags = posix.O_WRONLY | posix.O_RDWR | posix.O_CREAT | posix.O_TRUNC | posix.O_APPEND
    sha256, loads = hashlib.sha256, json.loads
    announced_hash = re.compile(re.escape(MARKER) + r" ([0-9a-f]{64})").search
    af_unix = getattr(__import__("socket"), "AF_UNIX", -1)
    main_thread, pid = native_id(), posix.getpid()
    try:
        from IPython.core.compilerop import CachingCompiler

        ast_parse = CachingCompiler.ast_parse.__code__  # the frame that compiles a cell's text
    except ImportError:
        ast_parse = None
    stdlib = os.path.dirname(os.__file__) + "/"
    stdlib_ctypes = stdlib + "ctypes/"
    os_file, dirname, is_regular = os.__file__, os.path.dirname, stat.S_ISREG
    watched, one_path, refusal, refusal_prefix = _WATCHED, _ONE_PATH, GuardRefusal, REFUSAL
    _process, _network, _introspection, _ctypes = _PROCESS, _NETWORK, _INTROSPECTION, _CTYPES
    nested_refused, frame_attributes = _INTROSPECTION | {"sys._getframe"}, _FRAME_ATTRIBUTES
    nested_only = frozenset({"sys._getframe", "object.__getattr__"})
    code_type, function_type, method_type = CodeType, FunctionType, MethodType
    try:
        from IPython import get_ipython
    except ImportError:
        get_ipython = None
    try:  # the C type's own method: a subclass model code made cannot answer for it
        from _sqlite3 import SQLITE_LIMIT_ATTACHED, Connection as sqlite_connection
    except ImportError:
        sqlite_connection = None
    import asyncio
    import functools

    from heapq import heapify

    running_loop, all_tasks, current_task = asyncio.events._get_running_loop, asyncio.all_tasks, asyncio.current_task
    handle_types, future_type = (asyncio.Handle, asyncio.TimerHandle), asyncio.Future
    cancel_handle, cancel_task, partial_type = asyncio.Handle.cancel, asyncio.Task.cancel, functools.partial
    set_unless_cancelled = asyncio.futures._set_result_unless_cancelled  # what asyncio.sleep queues
    machinery = ("/tornado/", "/zmq/", "/ipykernel/")
    busy: dict = {}  # thread -> what the hook is doing in it
    state = {"armed": armed_always, "always": armed_always, "hashes": set(), "files": set(), "tainted": set(),
             "threads": set(), "tmp_saved": None, "pending": None, "shell": None, "hooks": None, "loops": None}

    def real_dir(path: str) -> str:
        return realpath(path).rstrip("/") + "/"

    def configure(new: dict) -> None:
        tmp = new.get("tmp")
        if tmp == "private":
            tmp = state.get("private_tmp") or mkdtemp(prefix="medagent-guard-")
            state["private_tmp"] = tmp
        state["tmp"] = tmp
        state["writable"] = [real_dir(p) for p in new["writable"]] + ([real_dir(tmp)] if tmp else [])
        state["protected"] = [real_dir(p) for p in new.get("protected", [])]
        state["secrets"] = [p.rstrip("/") + "/" for p in new.get("secrets", [])]

    def threads() -> set:
        try:
            return {int(t) for t in listdir("/proc/self/task")}
        except OSError:
            return set()

    def agent_frame(frame) -> bool:
        files = state["files"]
        while frame is not None:
            if frame.f_code.co_filename in files:
                return True
            frame = frame.f_back
        return False

    def compiled_for_agent(frame) -> bool:
        """Model code compiles or runs this code itself or through the standard library (codeop, runpy,
        importlib used directly); an import statement's module is the library's (unless the agent could
        have written its file, which ``on_exec`` tells)."""
        files = state["files"]
        while frame is not None:
            code = frame.f_code
            name = code.co_filename
            if name in files:
                return True
            if name.startswith("<frozen importlib") and code.co_name == "_load_unlocked":
                return False
            if not (name.startswith("<frozen ") or (name.startswith(stdlib) and "-packages/" not in name)):
                return False
            frame = frame.f_back
        return False

    def guarded(frame) -> bool:
        return state["armed"] or native_id() in state["tainted"] or (bool(state["files"]) and agent_frame(frame))

    def refuse(what: str) -> None:
        out = state["writable"][0].rstrip("/") if state["writable"] else "not set"
        raise refusal(f"{refusal_prefix} refused: {what} (model-written code may not do this; the run's output "
                           f"folder is {out})")

    # ------------------------------------------------------------------ paths, resolved by the kernel
    def as_text(path):
        """The path argument as text. Only types whose conversion runs no model code are read: the hook
        never calls into objects model code may have made."""
        kind = type(path)
        if kind is str:
            return path
        if kind is bytes:
            return path.decode("utf-8", "surrogateescape")
        if issubclass(kind, pathlib.PurePath) and kind.__module__ == "pathlib" \
                and kind.__str__ is path_str and kind.__fspath__ is path_fspath:
            return path_str(path)
        return None

    def fd_path(fd: int):
        try:
            return readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None

    def resolve(path, dir_fd=None, follow=True):
        """The real absolute path the operating system would act on; None when it cannot be told."""
        if type(path) is int:
            return fd_path(path)
        text = as_text(path)
        if text is None:
            return None
        if text.startswith("file:"):  # sqlite URIs
            text = text[5:].split("?")[0]
        if not text.startswith("/"):
            base = fd_path(dir_fd) if type(dir_fd) is int else None
            text = (base if base is not None else getcwd()) + "/" + text
        text = text.rstrip("/") or "/"
        head, _, tail = text.rpartition("/")
        target, rest = (text, "") if follow or not tail else (head or "/", tail)
        while True:  # the deepest part that exists is resolved by the kernel, the rest appended
            try:
                fd = fsopen(target, o_path | posix.O_CLOEXEC) if o_path else None
            except OSError:
                parent, _, name = target.rpartition("/")
                if not name:
                    return None
                target, rest = parent or "/", name + ("/" + rest if rest else "")
                continue
            if fd is None:
                real = realpath(target)
            else:
                try:
                    real = readlink(f"/proc/self/fd/{fd}")
                finally:
                    close(fd)
            return normpath(real + ("/" + rest if rest else ""))

    def inside(real: str, roots) -> bool:
        return any((real.rstrip("/") + "/").startswith(root) for root in roots)

    def check_write(action: str, path, dir_fd=None, follow=True) -> None:
        real = resolve(path, dir_fd, follow)
        if real is None:
            refuse(f"{action} a path given as {type(path).__name__}; pass a str or a pathlib.Path")
        if inside(real, state["protected"]):
            refuse(f"{action} {real} inside the data folder, which is read-only")
        if real != "/dev/null" and not inside(real, state["writable"]):
            refuse(f"{action} {real}, outside the run's output folder")
        try:
            info = lstat(real)
        except OSError:
            return
        if is_regular(info.st_mode) and info.st_nlink > 1:
            refuse(f"{action} {real}: a hard-linked file whose other names may lie outside the output folder")

    def on_read_only_mount(real: str) -> bool:
        """Nothing can have written this file: its file system is mounted read-only (the sandbox binds the
        Python's own folders so, also where they lie under a writable root such as /tmp)."""
        try:
            return bool(statvfs(real).f_flag & st_rdonly)
        except OSError:
            return False

    def check_read(path) -> None:
        real = resolve(path)
        if real is not None and (inside(real, state["secrets"]) or
                                 (real.startswith("/proc/") and real.endswith("/environ"))):
            refuse(f"reads {real}, which holds secrets")

    def called_by_agent(frame) -> bool:
        """Model code made this call itself (through ctypes' own Python layer at most)."""
        while frame is not None and frame.f_code.co_filename.startswith(stdlib_ctypes):
            frame = frame.f_back
        return frame is not None and frame.f_code.co_filename in state["files"]

    # ------------------------------------------------------------------ arming and release
    def clean_ipython_compile(frame) -> bool:
        """IPython's own cell compiler, on the main thread, with no model code anywhere below it."""
        return (ast_parse is not None and frame is not None and frame.f_code is ast_parse
                and native_id() == main_thread and not agent_frame(frame))

    def on_compile(source, filename, frame) -> None:
        if type(source) is bytes:  # the event carries the text compile() received, encoded
            source = source.decode("utf-8", "replace")
        elif type(source) is not str:
            return
        if MARKER in source:
            if type(filename) is str:
                state["files"].add(filename)
            if not state["armed"]:
                state["armed"], state["threads"] = True, threads()
                state["pending"] = "snapshot"
                if state["tmp"]:
                    state["tmp_saved"], tempfile.tempdir = tempfile.tempdir, state["tmp"]
            if not state["hashes"] and clean_ipython_compile(frame):
                found = announced_hash(source)
                state["hashes"] = {found.group(1)} if found else set()
        elif source.startswith(RELEASE) and state["armed"] and not state["always"] and clean_ipython_compile(frame):
            token = source[len(RELEASE):].split()
            if token and sha256(token[0].encode()).hexdigest() in state["hashes"]:
                state["tainted"] |= threads() - state["threads"]
                state["armed"], state["hashes"], state["pending"] = False, set(), "restore"
                if state["tmp"]:
                    tempfile.tempdir = state["tmp_saved"]
        elif type(filename) is str and compiled_for_agent(frame):
            # Code the agent compiles stays the agent's, also through codeop, runpy or importlib.
            state["files"].add(filename)

    def on_exec(code, frame) -> None:
        """Code run from a file model code could have written (a module or a .pyc in the output folder),
        or run with model code below it, is the agent's wherever it runs later."""
        if type(code) is not code_type:
            return
        name = code.co_filename
        if type(name) is not str or name in state["files"]:
            return
        if compiled_for_agent(frame):
            state["files"].add(name)
        elif name.startswith("/"):
            real = resolve(name)
            if real is not None and inside(real, state["writable"]) and not on_read_only_mount(real):
                state["files"].add(name)

    # ------------------------------------------------------------------ IPython hooks the agent planted
    def library_function(value) -> bool:
        """A plain function (or a method of one) from a file the agent neither wrote nor compiled: what
        libraries register while a model cell imports them (matplotlib's figure flush, its formatters)."""
        kind = type(value)
        if kind is method_type:
            value = value.__func__
            kind = type(value)
        if kind is not function_type:
            return False
        name = value.__code__.co_filename
        if name in state["files"] or not name.startswith("/"):
            return False
        real = resolve(name)
        return real is not None and not (inside(real, state["writable"]) and not on_read_only_mount(real))

    def ipython_hooks(shell) -> list:
        """The lists and tables through which IPython runs code later (event callbacks, input and AST
        transformers, display formatters, custom exception handlers), each with a copy of its content."""
        found = []
        callbacks = getattr(getattr(shell, "events", None), "callbacks", None)
        if type(callbacks) is dict:
            found += [v for v in callbacks.values() if type(v) is list]
        manager = getattr(shell, "input_transformer_manager", None)
        for owner, name in ((shell, "input_transformers_post"), (shell, "ast_transformers"),
                            (manager, "cleanup_transforms"), (manager, "line_transforms"),
                            (manager, "token_transformers")):
            value = getattr(owner, name, None)
            if type(value) is list:
                found.append(value)
        formatters = getattr(getattr(shell, "display_formatter", None), "formatters", None)
        for formatter in (formatters.values() if type(formatters) is dict else ()):
            for name in ("type_printers", "deferred_printers", "singleton_printers"):
                value = getattr(formatter, name, None)
                if type(value) is dict:
                    found.append(value)
        return [(container, container.copy()) for container in found] + [
            (shell, (getattr(shell, "custom_exceptions", ()), getattr(shell, "CustomTB", None)))]

    def restore_hooks(saved: list) -> None:
        for container, before in saved:
            if type(container) is list:
                kept_ids = {id(item) for item in before}
                container[:] = [item for item in container if id(item) in kept_ids or library_function(item)]
            elif type(container) is dict:
                for key in list(container):
                    value = container[key]
                    if key in before and before[key] is value or library_function(value):
                        continue
                    if key in before:
                        container[key] = before[key]
                    else:
                        del container[key]
            else:
                container.custom_exceptions, container.CustomTB = before

    # ------------------------------------------------------------------ event-loop callbacks the agent left
    def event_loops(cells_loop) -> list:
        """The loop the cells run on and those of the kernel's other threads (tornado keeps a table of them)."""
        loops = [cells_loop]
        tornado = sys.modules.get("tornado.ioloop")
        table = getattr(getattr(tornado, "IOLoop", None), "_ioloop_for_asyncio", None)
        if table is not None:
            loops += list(table.keys())
        return [loop for loop in dict.fromkeys(loops) if loop is not None]

    def queued(loop) -> list:
        ready, scheduled = getattr(loop, "_ready", ()), getattr(loop, "_scheduled", ())
        return [*(ready if type(ready).__module__ == "collections" else ()),
                *(scheduled if type(scheduled) is list else ())]

    def loop_snapshot() -> dict:
        """What each loop holds at the start of a marked cell: its queued callbacks, and the main loop's tasks."""
        cells_loop = running_loop()
        return {"loops": [(loop, {id(h): h for h in queued(loop)}) for loop in event_loops(cells_loop)],
                "cells_loop": cells_loop, "tasks": {id(t): t for t in all_tasks(cells_loop)} if cells_loop else {}}

    def old_task_wakeup(callback, old_tasks: dict) -> bool:
        owner = getattr(callback, "__self__", None)
        return id(owner) in old_tasks and old_tasks[id(owner)] is owner

    def kernel_callback(handle, old_tasks: dict) -> bool:
        """A callback the kernel's own machinery queued: a wakeup of a task that was there before the cell, a
        sleep of such a task, or a function of tornado, zmq or ipykernel taking no arguments (tornado's
        ``add_callback`` wrapper looked into)."""
        callback, args = handle._callback, handle._args or ()
        if old_task_wakeup(callback, old_tasks):
            return True
        if callback is set_unless_cancelled and len(args) == 2 and isinstance(args[0], future_type):
            waiters = args[0]._callbacks or ()
            return bool(waiters) and all(old_task_wakeup(waiter, old_tasks) for waiter, _ in waiters)
        function = callback.__func__ if type(callback) is method_type else callback
        if type(function) is function_type and function.__name__ == "_run_callback" and len(args) == 1 \
                and "/tornado/" in function.__code__.co_filename and type(args[0]) is partial_type \
                and not args[0].args and not args[0].keywords:
            callback, args = args[0].func, ()
            function = callback.__func__ if type(callback) is method_type else callback
        if args or type(function) is not function_type or function.__code__.co_filename in state["files"]:
            return False
        return any(part in function.__code__.co_filename for part in machinery)

    def cancel_left_behind(saved: dict) -> None:
        """Take back what the cell queued to run after its release (``call_soon``/``call_later``/``call_at``,
        tornado's ``add_callback``/``call_later``, tasks on the cells' loop): there no model frame would be on
        the stack and the guard would not watch it. Anything queued that is not a plain handle is removed."""
        old_tasks = saved["tasks"]
        for loop, before in saved["loops"]:
            ready, scheduled = getattr(loop, "_ready", None), getattr(loop, "_scheduled", None)
            strays = []
            for handle in queued(loop):
                if before.get(id(handle)) is handle:
                    continue
                if type(handle) not in handle_types:
                    strays.append(handle)
                    continue
                try:
                    keep = kernel_callback(handle, old_tasks)
                except Exception:  # fail closed: what cannot be checked does not run
                    keep = False
                if not keep:
                    cancel_handle(handle)
            if strays:
                stray_ids = {id(item) for item in strays}
                for queue in (ready, scheduled):
                    if queue is not None and type(queue).__module__ in ("collections", "builtins"):
                        kept = [item for item in queue if id(item) not in stray_ids]
                        queue.clear()
                        queue.extend(kept)
                if type(scheduled) is list:
                    heapify(scheduled)
        cells_loop = saved["cells_loop"]
        if cells_loop is not None:
            current = current_task(cells_loop)
            for task in all_tasks(cells_loop):
                if old_tasks.get(id(task)) is not task and task is not current:
                    cancel_task(task)

    def after_decision() -> None:
        """Outside the hook's busy state (model code met here is guarded as its own): the IPython hooks
        at the start of a marked cell are taken note of, and whatever the agent added is removed at its
        release, so nothing it planted runs unguarded in the user's later cells."""
        what, state["pending"] = state["pending"], None
        if what == "snapshot":
            if state["shell"] is None and get_ipython is not None:
                state["shell"] = get_ipython()
            state["hooks"] = ipython_hooks(state["shell"]) if state["shell"] is not None else None
            state["loops"] = loop_snapshot()
        elif what == "restore":
            saved_loops, state["loops"] = state["loops"], None
            if state["hooks"] is not None:
                saved, state["hooks"] = state["hooks"], None
                restore_hooks(saved)
            if saved_loops is not None:
                cancel_left_behind(saved_loops)

    def env_change_by_agent(frame) -> bool:
        """Model code changes the environment itself or through a magic (``%env``); libraries that set
        their own variables while they load or run (numpy, monai, torch) are left alone."""
        while frame is not None and frame.f_code.co_filename in ("<frozen os>", os_file):
            frame = frame.f_back
        return frame is not None and (frame.f_code.co_filename in state["files"]
                                      or "/IPython/core/magics/" in frame.f_code.co_filename)

    def decide_event(event: str, args: tuple):
        """None to let the call go on, or a fresh exception for the hook to raise (never one that carries
        this function's frames: the state they hold stays out of a refusal's traceback)."""
        if event not in watched:
            return None
        me = native_id()
        phase = busy.get(me)
        if phase is not None:  # the hook's own lookups, or code that runs in the middle of the hook
            if phase == "deciding" and (event in nested_refused or (event == "object.__getattr__"
                                                                     and args[1] in frame_attributes)):
                return refusal(f"{refusal_prefix} refused: inspects frames while the guard is deciding")
            return None
        if event in nested_only:
            return None
        busy[me] = "frame"
        message = fresh = None
        try:
            frame = getframe(2)
            busy[me] = "deciding"
            decide(event, args, frame)
        except refusal as refused:
            message = refused.args[0]
        except BaseException as error:  # fail closed; KeyboardInterrupt and the like travel on, rebuilt
            kind = type(error)
            if kind.__module__ == "builtins" and not issubclass(kind, Exception):
                fresh = kind()
            else:
                message = f"{refusal_prefix} refused: the guard could not check this call ({kind.__name__})"
        finally:
            del busy[me]
        frame = None
        if state["pending"]:
            try:
                after_decision()
            except Exception:  # an IPython without these lists: nothing planted there to remove
                state["hooks"] = state["loops"] = None
        if fresh is not None:
            return fresh
        return None if message is None else refusal(message)

    def decide(event: str, args: tuple, frame) -> None:
        if event == "compile":
            on_compile(args[0], args[1], frame)
            return
        if event == "exec":
            on_exec(args[0], frame)
            return
        if event == PING:
            args[0].append(True)
            return
        if event == ARM:  # only ever stricter: no event disarms a guard armed for good
            if not state["armed"] and state["tmp"]:
                state["tmp_saved"], tempfile.tempdir = tempfile.tempdir, state["tmp"]
            state["armed"] = state["always"] = True
            return
        if event == CONFIGURE:
            # Medagent's own set-up cell, between agent cells: it runs code compiled through exec, which a
            # kernel that ran model cells may count as the agent's, so the frames are not asked here.
            if state["armed"] or native_id() in state["tainted"] or native_id() != main_thread:
                refuse("reconfigures the guard")
            configure(loads(args[0]))
            return
        if not guarded(frame):
            return
        if event in _process:
            refuse(f"starts a process ({event})")
        if event in _network:
            refuse(f"reaches the network ({event})")
        if event == "socket.__new__":
            if args[1] != af_unix:
                refuse("opens a network socket")
        elif event in _introspection:
            refuse(f"inspects the interpreter's internals ({event})")
        elif event in _ctypes:
            if event == "ctypes.dlopen":
                # A name without a slash is looked up by the dynamic linker in the system's folders, never in
                # the working directory (dlopen(3)); a path is checked where it really leads.
                text = as_text(args[0]) if args[0] is not None else None
                real = resolve(args[0]) if text is None or "/" in text else None
                if args[0] is None or (real and inside(real, state["writable"]) and not on_read_only_mount(real)):
                    refuse("loads a native library from the output folder or the process itself with ctypes")
            if called_by_agent(frame):
                refuse(f"calls native code through ctypes ({event})")
        elif event in ("code.__new__", "marshal.loads"):
            if called_by_agent(frame):
                refuse(f"builds code objects ({event})")
        elif event == "import":
            if type(args[0]) is str and args[0].split(".")[0] in _INSTALLERS:
                refuse(f"imports {args[0]}, which installs packages")
        elif event == "open":
            path, mode, flags = args
            if mode is None:  # os.open: it may carry a dir_fd the event does not show
                writing = bool(flags & write_flags)
                if writing and type(path) is not int and not (as_text(path) or "").startswith("/"):
                    refuse("opens a relative path for writing with os.open; use an absolute path")
            else:
                writing = any(c in mode for c in "wax+")
            if writing:
                check_write("writes", path)
            else:
                check_read(path)
        elif event == "sqlite3.connect/handle":
            # ATTACH and VACUUM INTO write other files from native code, without an audit event: a guarded
            # connection may attach none (model code can raise the limit again; the sandbox is the barrier).
            if sqlite_connection is not None and isinstance(args[0], sqlite_connection):
                sqlite_connection.setlimit(args[0], SQLITE_LIMIT_ATTACHED, 0)
        elif event in one_path:
            index, fd_index, follow = one_path[event]
            if event == "sqlite3.connect" and type(args[0]) is str and args[0] in (":memory:", ""):
                return
            dir_fd = args[fd_index] if fd_index is not None and len(args) > fd_index else None
            check_write(f"changes ({event})", args[index], dir_fd, follow)
            if event in ("shutil.copytree", "shutil.move"):
                check_read(args[0])
        elif event == "os.rename":  # rename and replace: the old and the new name both change
            src, dst, src_fd, dst_fd = (list(args) + [None, None])[:4]
            check_write("moves", src, src_fd, follow=False)
            check_write("moves onto", dst, dst_fd, follow=False)
        elif event == "os.link":
            src, dst, src_fd, dst_fd = (list(args) + [None, None])[:4]
            check_write("hard-links", src, src_fd)
            check_write("hard-links onto", dst, dst_fd, follow=False)
        elif event == "os.symlink":
            src, dst, dst_fd = (list(args) + [None])[:3]
            check_write("makes a link at", dst, dst_fd, follow=False)
            text = as_text(src)
            where = resolve(dst, dst_fd, follow=False)
            check_write("makes a link to", text if text is None or text.startswith("/") or where is None
                        else dirname(where) + "/" + text)
        elif event == "os.chdir":
            refuse("changes the working directory")
        elif event in ("os.putenv", "os.unsetenv"):
            if env_change_by_agent(frame):
                refuse("changes the environment")
        elif event in ("os.kill", "os.killpg"):
            if event == "os.killpg" or args[0] != pid:
                refuse("signals another process")

    configure(config)
    return FunctionType(_hook_template.__code__, {"__builtins__": {}}, "medagent_guard", (decide_event,))
