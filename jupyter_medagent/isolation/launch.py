"""The kernel launcher (``python -m jupyter_medagent.isolation.launch [options] -- KERNEL-ARGS``).

Before anything else it checks that it holds no capabilities (``CapEff``, ``CapPrm`` and ``CapAmb`` of
``/proc/self/status`` all zero; bubblewrap's ``--cap-drop ALL`` gives that, as root too) and refuses to
start otherwise: a kernel that keeps root's capabilities can remount the sandbox away. Only
``--no-sandbox`` (the guard-only kernels of ``--isolation guard|off``, where no sandbox exists) skips
that check, and says so.

It then sets the resource limits and ``no_new_privs`` and installs a seccomp filter (while the process
has a single thread, so every later thread and child inherits it) that refuses starting programs
(``execve``, ``execveat``) and the calls that undo or get around a sandbox: mounts (old and new API),
``pivot_root``/``chroot``, new namespaces (``unshare``, ``setns``, ``clone`` with a ``CLONE_NEW*``
flag; ``clone3``, whose flags a filter cannot read, answers ENOSYS so the C library falls back to
``clone``), ``open_by_handle_at``, ``ptrace`` and ``process_vm_readv/writev``, ``bpf``, kernel modules,
``kexec``, keyrings, ``perf_event_open`` and ``userfaultfd``. Calls from another ABI (i386 ``int 0x80``,
x32) are refused outright. Forking without exec (data loader workers) still works. Then it starts
ipykernel and, when asked, installs the runtime guard once the kernel is initialised (armed for good
with ``--armed``: the verification re-run has no agent to mark cells, so every cell of it is guarded).
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

# Syscall numbers from <asm/unistd_64.h> (x86_64) and <asm-generic/unistd.h> (aarch64).
_DENIED = ("execve", "execveat", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
           "open_by_handle_at", "ptrace", "process_vm_readv", "process_vm_writev", "bpf", "init_module",
           "finit_module", "delete_module", "kexec_load", "kexec_file_load", "keyctl", "add_key", "request_key",
           "perf_event_open", "userfaultfd", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
           "mount_setattr")
SYSCALLS = {
    "x86_64": {"arch": 0xC000003E, "execve": 59, "execveat": 322, "mount": 165, "umount2": 166, "pivot_root": 155,
               "chroot": 161, "unshare": 272, "setns": 308, "open_by_handle_at": 304, "ptrace": 101,
               "process_vm_readv": 310, "process_vm_writev": 311, "bpf": 321, "init_module": 175,
               "finit_module": 313, "delete_module": 176, "kexec_load": 246, "kexec_file_load": 320, "keyctl": 250,
               "add_key": 248, "request_key": 249, "perf_event_open": 298, "userfaultfd": 323, "open_tree": 428,
               "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
               "mount_setattr": 442, "clone": 56, "clone3": 435},
    "aarch64": {"arch": 0xC00000B7, "execve": 221, "execveat": 281, "mount": 40, "umount2": 39, "pivot_root": 41,
                "chroot": 51, "unshare": 97, "setns": 268, "open_by_handle_at": 265, "ptrace": 117,
                "process_vm_readv": 270, "process_vm_writev": 271, "bpf": 280, "init_module": 105,
                "finit_module": 273, "delete_module": 106, "kexec_load": 104, "kexec_file_load": 294, "keyctl": 219,
                "add_key": 217, "request_key": 218, "perf_event_open": 241, "userfaultfd": 282, "open_tree": 428,
                "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
                "mount_setattr": 442, "clone": 220, "clone3": 435},
}
X32_SYSCALL_BIT = 0x40000000  # x32 ABI calls carry x86_64's arch with this bit set in the number
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 39, 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
CAPABILITY_FIELDS = ("CapEff", "CapPrm", "CapAmb")  # must all be 0 in a sandboxed kernel
REFUSAL_PREFIX = "medagent kernel: refusing to start: "  # the launcher's refusal, one line on stderr


def capabilities() -> dict[str, int]:
    """The capability sets of this process (CapInh, CapPrm, CapEff, CapBnd, CapAmb) from /proc/self/status."""
    with open("/proc/self/status") as status:
        return {key: int(value, 16) for key, _, value in (line.partition(":\t") for line in status)
                if key.startswith("Cap")}


def capability_problem() -> str | None:
    """Why this process may not run a sandboxed kernel (it holds capabilities), or None."""
    try:
        caps = capabilities()
    except OSError as exc:
        return f"cannot read /proc/self/status ({exc})"
    held = {k: caps.get(k, 0) for k in CAPABILITY_FIELDS if caps.get(k, 0)}
    if not held:
        return None
    sets = ", ".join(f"{k} {v:016x}" for k, v in held.items())
    return f"the kernel process holds capabilities ({sets}; CapBnd {caps.get('CapBnd', 0):016x})"


def seccomp_program(machine: str) -> bytes:
    """The filter (classic BPF) for ``machine``: the calls in ``_DENIED`` and namespace clones answer EPERM,
    clone3 ENOSYS, other ABIs EPERM, everything else is allowed."""
    numbers = SYSCALLS[machine]
    deny, enosys = SECCOMP_RET_ERRNO | errno.EPERM, SECCOMP_RET_ERRNO | errno.ENOSYS
    # (op, k, jump-true label, jump-false label) with labels resolved to relative offsets below.
    code: list[tuple] = [(_LD_W_ABS, 4), (_JEQ_K, numbers["arch"], None, "deny"), (_LD_W_ABS, 0)]
    if machine == "x86_64":
        code.append((_JGE_K, X32_SYSCALL_BIT, "deny", None))
    code += [(_JEQ_K, numbers[name], "deny", None) for name in _DENIED]
    code += [(_JEQ_K, numbers["clone3"], "enosys", None), (_JEQ_K, numbers["clone"], None, "allow"),
             (_LD_W_ABS, 16),  # seccomp_data.args[0], low word: clone's flags
             (_JSET_K, CLONE_NAMESPACES, "deny", None),
             "allow", (_RET_K, SECCOMP_RET_ALLOW), "deny", (_RET_K, deny), "enosys", (_RET_K, enosys)]
    return _assemble(code)


# socket(2) and io_uring_setup(2) (whose rings can open sockets without calling socket), for refusal_program.
_SOCKET_CALLS = {"x86_64": {"socket": 41, "io_uring_setup": 425}, "aarch64": {"socket": 198, "io_uring_setup": 425}}


def refusal_program(machine: str, calls: tuple[str, ...], socket_families: tuple[int, ...] = ()) -> bytes:
    """A filter that answers EPERM to ``calls`` (names in ``SYSCALLS``), to io_uring and to ``socket`` for the
    address families ``socket_families`` when any are given, and to other ABIs; everything else is allowed."""
    numbers, deny = SYSCALLS[machine], SECCOMP_RET_ERRNO | errno.EPERM
    code: list = [(_LD_W_ABS, 4), (_JEQ_K, numbers["arch"], None, "deny"), (_LD_W_ABS, 0)]
    if machine == "x86_64":
        code.append((_JGE_K, X32_SYSCALL_BIT, "deny", None))
    code += [(_JEQ_K, numbers[name], "deny", None) for name in calls]
    if socket_families:
        extra = _SOCKET_CALLS[machine]
        code += [(_JEQ_K, extra["io_uring_setup"], "deny", None), (_JEQ_K, extra["socket"], None, "allow"),
                 (_LD_W_ABS, 16)]  # seccomp_data.args[0], low word: the address family
        code += [(_JEQ_K, family, "deny", None) for family in socket_families]
    code += ["allow", (_RET_K, SECCOMP_RET_ALLOW), "deny", (_RET_K, deny)]
    return _assemble(code)


def _assemble(code: list) -> bytes:
    """Classic BPF from (op, k[, jump-true label, jump-false label]) items and label names."""
    labels, index = {}, 0
    for item in code:
        if isinstance(item, str):
            labels[item] = index
        else:
            index += 1
    program, index = [], 0
    for item in code:
        if isinstance(item, str):
            continue
        op, k, *targets = item
        jt, jf = (labels[t] - index - 1 if t else 0 for t in (targets or (None, None)))
        program.append(struct.pack("HBBI", op, jt, jf, k))
        index += 1
    return b"".join(program)


def install_seccomp() -> str | None:
    """Set no_new_privs and install the filter; returns why it could not be, or None."""
    machine = platform.machine()
    if machine not in SYSCALLS or not sys.platform.startswith("linux"):
        return f"no seccomp filter for {machine} / {sys.platform}"
    program = seccomp_program(machine)
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


def refuse(reason: str) -> int:
    """Say why no kernel starts, on stderr (which the host holds open; no file in a folder the kernel can
    write is ever read back); the exit status."""
    print(f"{REFUSAL_PREFIX}{reason}", file=sys.stderr)
    return 2


def add_working_directory() -> None:
    """Put the working directory on sys.path where IPython would (before the first site-packages, after the
    standard library), once the kernel and the guard are loaded: ``-P`` kept it off while they were
    imported (a planted ``jupyter_medagent/`` there must not be what starts), and a notebook's cells may
    still import the modules beside it."""
    position = next((i for i, p in enumerate(sys.path) if p.endswith(("site-packages", "dist-packages"))),
                    len(sys.path))
    if "" not in sys.path:
        sys.path.insert(position, "")


def main(argv: list[str] | None = None) -> int | None:
    parser = argparse.ArgumentParser(prog="jupyter_medagent.isolation.launch")
    parser.add_argument("--memory-mb", type=int)
    parser.add_argument("--cpu-seconds", type=int)
    parser.add_argument("--guard", help="the guard's policy as JSON")
    parser.add_argument("--armed", action="store_true", help="guard every cell, for the kernel's whole life")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="a guard-only kernel outside any sandbox: start even while holding capabilities")
    parser.add_argument("kernel_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    problem = None if args.no_sandbox else capability_problem()
    if problem:
        return refuse(f"{problem}. A sandboxed kernel must run without capabilities (bubblewrap --cap-drop ALL); "
                      "a kernel outside the sandbox needs --no-sandbox")
    set_limits(args.memory_mb, args.cpu_seconds)
    problem = install_seccomp()
    if problem and not args.no_sandbox:
        return refuse(f"the seccomp filter could not be installed ({problem})")
    if problem:
        print(f"medagent kernel: programs can still be started ({problem})", file=sys.stderr)
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize([a for a in args.kernel_args if a != "--"])
    if args.guard:
        from jupyter_medagent.isolation.guard import install

        install(json.loads(args.guard), armed_always=args.armed)
    add_working_directory()
    app.start()
    return None


if __name__ == "__main__":
    sys.exit(main())
