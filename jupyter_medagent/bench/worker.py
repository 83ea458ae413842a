"""One benchmark run in a process of its own: the run's spec (JSON) on stdin, its row written to the file
named on the command line. The bench reads a missing row as a crash of this process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jupyter_medagent.bench.runner import RunSpec, guarded_run


def main() -> None:
    spec = RunSpec(**json.loads(sys.stdin.read()))
    row = guarded_run(spec)
    path = Path(sys.argv[1])
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(row, default=str))
    partial.replace(path)  # whole or absent: a row cut short by a kill is never read


if __name__ == "__main__":
    main()
