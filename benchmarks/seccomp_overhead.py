"""What the kernels' seccomp filter costs the demo's kind of training step: the same steps in a child process
with and without the filter (launch.install_seccomp), interleaved so that other load on the machine hits both.

    .venv/bin/python benchmarks/seccomp_overhead.py [--rounds 2] [--steps 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from isolation_overhead import TRAIN  # noqa: E402  (the demo's network, batch and loss)

FILTER = "from jupyter_medagent.isolation.launch import install_seccomp\nassert install_seccomp() is None\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    code = TRAIN.replace("STEPS", str(args.steps))
    totals = {"no filter": 0.0, "seccomp filter": 0.0}
    for round_ in range(args.rounds):
        for name, source in (("no filter", code), ("seccomp filter", FILTER + code)):
            done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, check=True)
            seconds = float(done.stdout.strip().splitlines()[-1])
            totals[name] += seconds
            print(f"round {round_ + 1}: {name:14s} {args.steps} steps {seconds:.2f} s", flush=True)
    print(f"seccomp filter / no filter: {totals['seccomp filter'] / totals['no filter']:.2f} (same run, "
          f"{args.rounds} rounds)")


if __name__ == "__main__":
    main()
