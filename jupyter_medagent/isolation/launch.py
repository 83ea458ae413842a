"""The kernel launcher (``python -m jupyter_medagent.isolation.launch [options] -- KERNEL-ARGS``).

Sets the resource limits, forbids starting programs (a seccomp filter refusing execve, set while
the process has a single thread, so every later thread and child inherits it), starts ipykernel
and, when asked, installs the runtime guard once the kernel is initialised (armed for good with
``--armed``: the verification re-run has no agent to mark cells, so every cell of it is guarded).

The seccomp filter covers what Python's audit hooks do not see (``_posixsubprocess.fork_exec``,
native code): no program can be started from the kernel at all. Forking without exec (data
loader workers) still works.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import platform
import resource
import struct
import sys

# (AUDIT_ARCH_*, execve, execveat) per machine; other machines run without the filter.
EXEC_SYSCALLS = {"x86_64": (0xC000003E, 59, 322), "aarch64": (0xC00000B7, 221, 281)}
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000


def forbid_exec() -> str | None:
    """Install the no-exec seccomp filter; returns why it could not be, or None."""
    machine = EXEC_SYSCALLS.get(platform.machine())
    if machine is None or not sys.platform.startswith("linux"):
        return f"no seccomp filter for {platform.machine()} / {sys.platform}"
    arch, execve, execveat = machine
    deny = SECCOMP_RET_ERRNO | errno.EPERM

    def stmt(code, k):
        return struct.pack("HBBI", code, 0, 0, k)

    def jump(code, k, jt, jf):
        return struct.pack("HBBI", code, jt, jf, k)

    ld_w_abs, jeq_k, ret_k = 0x20, 0x15, 0x06
    program = b"".join([
        stmt(ld_w_abs, 4),                  # seccomp_data.arch
        jump(jeq_k, arch, 1, 0),
        stmt(ret_k, SECCOMP_RET_ALLOW),     # another ABI: not ours to judge
        stmt(ld_w_abs, 0),                  # seccomp_data.nr
        jump(jeq_k, execve, 2, 0),
        jump(jeq_k, execveat, 1, 0),
        stmt(ret_k, SECCOMP_RET_ALLOW),
        stmt(ret_k, deny),
    ])
    filters = ctypes.create_string_buffer(program)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    prog = SockFprog(len(program) // 8, ctypes.cast(filters, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"prctl failed: {errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())}"
    return None


def set_limits(memory_mb: int | None, cpu_seconds: int | None) -> None:
    for kind, value in ((resource.RLIMIT_AS, memory_mb and memory_mb * 2**20), (resource.RLIMIT_CPU, cpu_seconds)):
        if value:
            _, hard = resource.getrlimit(kind)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (value, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="jupyter_medagent.isolation.launch")
    parser.add_argument("--memory-mb", type=int)
    parser.add_argument("--cpu-seconds", type=int)
    parser.add_argument("--guard", help="the guard's policy as JSON")
    parser.add_argument("--armed", action="store_true", help="guard every cell, for the kernel's whole life")
    parser.add_argument("--no-exec", action="store_true", help="forbid starting programs (seccomp)")
    parser.add_argument("kernel_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    set_limits(args.memory_mb, args.cpu_seconds)
    if args.no_exec:
        problem = forbid_exec()
        if problem:
            print(f"medagent kernel: programs can still be started ({problem})", file=sys.stderr)
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize([a for a in args.kernel_args if a != "--"])
    if args.guard:
        from jupyter_medagent.isolation.guard import install

        install(json.loads(args.guard), armed_always=args.armed)
    app.start()


if __name__ == "__main__":
    sys.exit(main())
