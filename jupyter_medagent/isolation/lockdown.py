"""Lock a running kernel down for the rest of its life: it starts no program, opens no internet socket and
writes files only beneath the folders it is given.

The first cell of a notebook a model backend wrote calls ``refuse_programs_and_network`` besides arming
the guard, so that when the user re-runs the notebook in a plain kernel, outside medagent's sandbox, a cell
that behaves only while it is watched still cannot start a process (``execve``/``execveat`` refused,
including through ``_posixsubprocess.fork_exec``, which raises no audit event) nor phone home (``socket``
refused for ``AF_INET``, ``AF_INET6`` and ``AF_PACKET``; io_uring, which can open sockets without that
call, is refused too). A seccomp filter, enforced by the Linux kernel for every thread of the process and
every child it forks; it cannot be removed: restarting the kernel lifts it. The filter comes from
``launch.refusal_program``, the same builder as the sandbox's own.

``lock_down`` adds a Landlock ruleset (Linux >= 5.13) that refuses every write-type file access (writing,
truncating, creating, removing, renaming or linking files, device ioctls) outside the output folder, the
null-style devices, shared memory and a private temp folder: a native writer (``torch.UntypedStorage.from_file``
mmaps a file without an audit event the guard could see) cannot plant a ``.pth`` in site-packages. Landlock
also scopes abstract unix sockets and signals (ABI >= 6) to this domain. Reads stay allowed. The ruleset binds
the calling thread and every thread and child started from it afterwards (the cells' own); without Landlock's
thread-sync (ABI >= 8) the kernel's threads started before it (zmq's, ipykernel's control and iopub) keep
their old rights: this lockdown, like the guard, assumes the cells run on the thread that ran this one.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import os
import platform
import socket
import sys
import tempfile
from collections.abc import Iterable

from jupyter_medagent.isolation.launch import PR_SET_NO_NEW_PRIVS, SYSCALLS, refusal_program

REFUSED_CALLS = ("execve", "execveat")
REFUSED_FAMILIES = (socket.AF_INET, socket.AF_INET6, getattr(socket, "AF_PACKET", 17))
_SECCOMP_SYSCALL = {"x86_64": 317, "aarch64": 277}
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1


# Landlock: the system calls (one number on every architecture) and the rights by ABI version.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION, _RULE_PATH_BENEATH = 1, 1
_ACCESS = {"WRITE_FILE": (1 << 1, 1), "REMOVE_DIR": (1 << 4, 1), "REMOVE_FILE": (1 << 5, 1),
           "MAKE_CHAR": (1 << 6, 1), "MAKE_DIR": (1 << 7, 1), "MAKE_REG": (1 << 8, 1), "MAKE_SOCK": (1 << 9, 1),
           "MAKE_FIFO": (1 << 10, 1), "MAKE_BLOCK": (1 << 11, 1), "MAKE_SYM": (1 << 12, 1), "REFER": (1 << 13, 2),
           "TRUNCATE": (1 << 14, 3), "IOCTL_DEV": (1 << 15, 5)}  # name: (bit, first ABI that has it)
_FILE_ACCESS = ("WRITE_FILE", "TRUNCATE", "IOCTL_DEV")  # the rights a rule on a file (not a folder) may grant
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL, _SCOPE_ABI = 1 << 0, 1 << 1, 6
# Devices a kernel writes to: the null-style ones, shared memory (DataLoader workers), the GPU's.
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/shm", "/dev/nvidia*",
            "/dev/dri")


class LockdownError(RuntimeError):
    """The filter could not be installed: the cells below would run without it."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def lock_down(writable: Iterable[str | os.PathLike]) -> str:
    """Writes confined to ``writable`` (``confine_writes``), then programs and internet refused
    (``refuse_programs_and_network``); returns a line saying what it did. Raises ``LockdownError`` where
    either cannot be done."""
    confined = confine_writes(writable)
    refuse_programs_and_network()
    return (f"this kernel now starts no program, opens no internet socket (seccomp) and {confined}; "
            "restart the kernel to lift it")


def confine_writes(writable: Iterable[str | os.PathLike]) -> str:
    """A Landlock ruleset on this thread and those it starts: file writes only beneath ``writable`` (made
    if missing), the devices a kernel needs and a fresh private temp folder (``TMPDIR`` and ``tempfile``
    point there); returns a line saying so."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(ctypes.c_long(_CREATE_RULESET), None, ctypes.c_size_t(0),
                       ctypes.c_uint32(_CREATE_RULESET_VERSION))
    if abi < 1:
        raise LockdownError(f"Landlock is not available here ({errno.errorcode.get(ctypes.get_errno())}): this "
                            "kernel can still write files anywhere; do not run the cells below here")
    rights = {name: bit for name, (bit, since) in _ACCESS.items() if abi >= since}
    handled = sum(rights.values())
    file_rights = sum(rights.get(name, 0) for name in _FILE_ACCESS)
    attr = _RulesetAttr(handled, 0, _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= _SCOPE_ABI else 0)
    size = ctypes.sizeof(ctypes.c_uint64) * (3 if abi >= _SCOPE_ABI else 1)
    ruleset = libc.syscall(ctypes.c_long(_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise LockdownError(f"the Landlock ruleset could not be made ({errno.errorcode.get(ctypes.get_errno())})")
    folders = [os.path.abspath(os.fspath(path)) for path in writable]
    for folder in folders:
        os.makedirs(folder, exist_ok=True)
    private_tmp = tempfile.mkdtemp(prefix="medagent-lockdown-")
    devices = [path for pattern in _DEVICES for path in glob.glob(pattern)]
    try:
        for path in [*folders, private_tmp, *devices]:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = _PathBeneathAttr(handled if os.path.isdir(path) else file_rights, fd)
                if libc.syscall(ctypes.c_long(_ADD_RULE), ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                                ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    raise LockdownError(f"Landlock refused a rule for {path} "
                                        f"({errno.errorcode.get(ctypes.get_errno())})")
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise LockdownError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {errno.errorcode.get(ctypes.get_errno())}")
        if libc.syscall(ctypes.c_long(_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise LockdownError(f"the Landlock ruleset could not be enforced "
                                f"({errno.errorcode.get(ctypes.get_errno())}): this kernel can still write files "
                                "anywhere; do not run the cells below here")
    finally:
        os.close(ruleset)
    os.environ["TMPDIR"] = tempfile.tempdir = private_tmp
    return f"writes files only beneath {', '.join(folders)} and {private_tmp} (Landlock ABI {abi})"


def _libc():
    try:  # by name, not the process itself: a guard armed for good (the verification re-run) refuses that
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError as exc:
        raise LockdownError(f"cannot load the C library ({exc}): this kernel can still start programs, write "
                            "files and reach the network; do not run the cells below here") from exc


def refuse_programs_and_network() -> str:
    """Install the filter on every thread of this process (seccomp's TSYNC); returns a line saying what it did.
    Raises ``LockdownError`` where that cannot be done (not Linux, another architecture, seccomp missing)."""
    machine = platform.machine()
    if not sys.platform.startswith("linux") or machine not in SYSCALLS or machine not in _SECCOMP_SYSCALL:
        raise LockdownError(f"no seccomp filter for {machine} / {sys.platform}: this kernel can still start "
                            "programs and reach the network; do not run the cells below here")
    program = refusal_program(machine, REFUSED_CALLS, REFUSED_FAMILIES)
    filters = ctypes.create_string_buffer(program)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    prog = SockFprog(len(program) // 8, ctypes.cast(filters, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise LockdownError(f"prctl(PR_SET_NO_NEW_PRIVS) failed: {errno.errorcode.get(ctypes.get_errno())}")
    result = libc.syscall(ctypes.c_long(_SECCOMP_SYSCALL[machine]), ctypes.c_long(SECCOMP_SET_MODE_FILTER),
                          ctypes.c_long(SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(prog))
    if result != 0:
        why = f"thread {result} has another filter" if result > 0 else errno.errorcode.get(ctypes.get_errno())
        raise LockdownError(f"the seccomp filter could not be installed ({why}): this kernel can still start "
                            "programs and reach the network; do not run the cells below here")
    return ("this kernel now starts no program and opens no internet socket (seccomp); "
            "restart the kernel to lift it")
