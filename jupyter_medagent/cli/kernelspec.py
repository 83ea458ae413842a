"""``medagent kernelspec install``: the "Python 3 (medagent sandbox)" notebook kernel."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser("kernelspec", help="install the sandboxed notebook kernel, Python 3 (medagent sandbox)")
    actions = parser.add_subparsers(dest="action", required=True)
    install = actions.add_parser("install", help="install the kernel spec (system-wide unless --user/--sys-prefix)")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user only")
    where.add_argument("--sys-prefix", action="store_true", help="into this Python's prefix (a virtualenv)")
    install.set_defaults(handler=run)


def run(args) -> int:
    from jupyter_medagent.isolation.kernelspec import DISPLAY_NAME, install
    from jupyter_medagent.isolation.sandbox import sandbox_problem

    folder = install(user=args.user, prefix=sys.prefix if args.sys_prefix else None)
    print(f"installed {DISPLAY_NAME} in {folder}")
    problem = sandbox_problem()
    if problem:
        print(f"note: this kernel will not start on this machine: {problem}")
    return 0
