"""The kernel launcher (``python -m jupyter_medagent.isolation.launch [options] -- KERNEL-ARGS``).

Sets the resource limits, starts ipykernel and, when asked, installs the runtime guard once the
kernel is initialised (armed for good with ``--armed``: the verification re-run has no agent to
mark cells, so every cell of it is guarded).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys


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
    parser.add_argument("kernel_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    set_limits(args.memory_mb, args.cpu_seconds)
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize([a for a in args.kernel_args if a != "--"])
    if args.guard:
        from jupyter_medagent.isolation.guard import install

        install(json.loads(args.guard), armed_always=args.armed)
    app.start()


if __name__ == "__main__":
    sys.exit(main())
