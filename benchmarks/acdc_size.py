"""An ACDC-size data set, as a user downloads it: does the agent cope with its size?

Builds a replica with the phantom in ACDC's layout (150 patients: 100 labelled training patients and 50
test patients without labels; 4D cines of 30 frames at 256 x 216 x 8-11; Info.cfg per patient), then
measures, each in a subprocess run the way a user runs it:

- ``medagent inspect``: seconds and peak memory (targets: <= 60 s, <= 2 GB);
- ``medagent run`` with the demo's request: wall time (target: solved within 15 minutes), peak memory of
  the whole process tree (agent and kernels), Dice, EF error, EF of the unlabelled test patients from their
  cines' volume curves against the phantom's truth.

    .venv/bin/python benchmarks/acdc_size.py [--patients 100 --test-patients 50 --frames 30] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from jupyter_medagent.cli.run import DEMO_REQUEST
from jupyter_medagent.synth.replicas import synth_cardiac


def measured(command: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run ``command``; (result, seconds, peak resident memory of it and all its descendants in GB)."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample():
        root = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = [root] + root.children(recursive=True)
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    sampler.join()
    return subprocess.CompletedProcess(command, process.returncode, out, err), time.monotonic() - started, peak[0] / 1024**3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--test-patients", type=int, default=50)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--keep", type=Path, help="build the replica here and keep it (else a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        data = root / "acdc"
        started = time.monotonic()
        if not (data / "manifest.json").exists():
            synth_cardiac(data, cases=args.patients, seed=21, layout="acdc", test_cases=args.test_patients,
                          frames=args.frames, matrix=(256, 216))
        manifest = json.loads((data / "manifest.json").read_text())
        size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) / 1024**3
        print(f"replica: {len(manifest['patients'])} patients, {args.frames}-frame cines at 256 x 216, "
              f"{size:.1f} GB on disk, built in {time.monotonic() - started:.0f} s")
        cli = [sys.executable, "-m", "jupyter_medagent.cli"]
        result, seconds, peak = measured(cli + ["inspect", str(data), "--json"], root)
        report = json.loads(result.stdout)
        print(f"inspect: {seconds:.1f} s (target <= 60), peak memory {peak:.2f} GB (target <= 2); "
              f"{report['card']['n_cases']} cases, {len(report['card']['cines'])} cines, "
              f"{report['card']['n_patients']} patients, {len(report['findings'])} findings")
        result, seconds, peak = measured(cli + ["run", DEMO_REQUEST, "--data", str(data), "--out",
                                                str(root / "acdc.ipynb"), "--json"], root)
        if not result.stdout.strip():
            raise SystemExit(f"the run printed no summary:\n{result.stderr[-3000:]}")
        summary = json.loads(result.stdout)
        truth = {p: v["lv_ef_percent"] for p, v in manifest["patients"].items()}
        predicted = summary["metrics"].get("ef_predicted", {})
        unlabelled = [p for p, v in manifest["patients"].items() if v["split"] == "testing" and p in predicted]
        curve_error = (sum(abs(predicted[p] - truth[p]) for p in unlabelled) / len(unlabelled)) if unlabelled else None
        print(f"run: {summary['status']} in {seconds / 60:.1f} min (target: solved within 15), peak memory of the "
              f"process tree {peak:.2f} GB; training {summary['time_split']['training_seconds']} s; "
              f"Dice {summary['dice_mean']:.3f}, held-out EF error {summary['ef_abs_error']:.2f} points; "
              f"test patients' EF from their cines' volume curves: {len(unlabelled)} patients, mean error "
              f"{curve_error if curve_error is None else round(curve_error, 2)} points vs truth; "
              f"re-executed {summary['reexecuted_ok']}")


if __name__ == "__main__":
    main()
