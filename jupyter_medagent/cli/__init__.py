"""The ``medagent`` command. Each subcommand lives in its own module with a ``register``."""

from __future__ import annotations

import argparse
import importlib
import sys

from jupyter_medagent.contracts.errors import MedagentError

# Subcommand modules, in the order ``medagent --help`` lists them.
COMMAND_MODULES = ("synth", "inspect", "judge", "run", "bench", "mcp", "kernelspec")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medagent",
        description="Medical-image-analysis agent: inspect data, judge labels, build verified pipelines.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"jupyter_medagent.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except MedagentError as exc:
        print(f"medagent: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medagent: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full or unwritable folder outside a run: one line, no traceback
        print(f"medagent: error: {exc.filename + ': ' if exc.filename else ''}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
