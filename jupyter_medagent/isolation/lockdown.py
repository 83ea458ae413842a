"""Lock a running kernel down for the rest of its life: it starts no program and opens no internet socket.

The first cell of a notebook a model backend wrote calls ``refuse_programs_and_network`` besides arming
the guard, so that when the user re-runs the notebook in a plain kernel, outside medagent's sandbox, a cell
that behaves only while it is watched still cannot start a process (``execve``/``execveat`` refused,
including through ``_posixsubprocess.fork_exec``, which raises no audit event) nor phone home (``socket``
refused for ``AF_INET``, ``AF_INET6`` and ``AF_PACKET``; io_uring, which can open sockets without that
call, is refused too). A seccomp filter, enforced by the Linux kernel for every thread of the process and
every child it forks; it cannot be removed: restarting the kernel lifts it. The filter comes from
``launch.refusal_program``, the same builder as the sandbox's own.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import socket
import sys

from jupyter_medagent.isolation.launch import PR_SET_NO_NEW_PRIVS, SYSCALLS, refusal_program

REFUSED_CALLS = ("execve", "execveat")
REFUSED_FAMILIES = (socket.AF_INET, socket.AF_INET6, getattr(socket, "AF_PACKET", 17))
_SECCOMP_SYSCALL = {"x86_64": 317, "aarch64": 277}
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1


class LockdownError(RuntimeError):
    """The filter could not be installed: the cells below would run without it."""


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

    try:  # by name, not the process itself: a guard armed for good (the verification re-run) refuses that
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError as exc:
        raise LockdownError(f"cannot load the C library ({exc}): this kernel can still start programs and reach "
                            "the network; do not run the cells below here") from exc
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
