"""Planted-pitfall detection through the CLI: sensitivity and false-alarm rate.

For each seed: `medagent synth cardiac --pitfalls all`, then `medagent inspect --json`.
A planted pitfall counts as detected only when a finding names the right case with the right
kind; a clean case counts as a false alarm when any finding names it.
Targets: sensitivity >= 95%, false alarms <= 5%.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def medagent(*args) -> str:
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=24, help="patients per data set (2 cases each)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    planted_total = detected = clean_total = false_alarms = 0
    by_kind: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            out = Path(tmp) / f"seed{seed}"
            medagent("synth", "cardiac", out, "--cases", args.cases, "--seed", seed, "--pitfalls", "all")
            report = json.loads(medagent("inspect", out, "--json"))
            manifest = json.loads((out / "manifest.json").read_text())
            reported = {(f["case"], f["kind"]) for f in report["findings"]}
            flagged = {f["case"] for f in report["findings"]}
            for case in manifest["cases"]:
                if not case["pitfalls"]:
                    clean_total += 1
                    false_alarms += case["case"] in flagged
                for pitfall in case["pitfalls"]:
                    hit = (case["case"], pitfall["kind"]) in reported
                    planted_total += 1
                    detected += hit
                    by_kind.setdefault(pitfall["kind"], [0, 0])[0] += hit
                    by_kind[pitfall["kind"]][1] += 1
    sensitivity, false_rate = detected / planted_total, false_alarms / clean_total
    print(f"{args.seeds} data sets x {args.cases} patients ({2 * args.cases} cases each)")
    for kind, (hit, n) in sorted(by_kind.items()):
        print(f"  {kind:20s} {hit}/{n}")
    print(f"sensitivity: {sensitivity:.1%} ({detected}/{planted_total})  target >= 95%")
    print(f"false-alarm rate: {false_rate:.1%} ({false_alarms}/{clean_total} clean cases)  target <= 5%")


if __name__ == "__main__":
    main()
