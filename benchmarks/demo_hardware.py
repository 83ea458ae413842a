"""The demo on this machine's hardware: what the plan chose, and how fast and how well it ran.

Runs ``medagent demo`` as a user would (a subprocess, default settings) and prints wall time, training
time, the plan's device/precision/batch/steps, Dice, EF error and re-execution. While it runs, GPU
utilisation and memory are sampled with nvidia-smi when there is a GPU. On a GPU machine the same demo is
run again with the plan held to the CPU (``offline:device=cpu``): the baseline of the same run, so the
ratio shows what the GPU bought. Targets (issue 9): on the 2-core CPU, no slower than before the plan;
on an H100-class GPU, <= 60 s with visible GPU utilisation.

``--baseline-ref REF`` (a git commit, e.g. the one before the plans) runs that commit's demo from a temporary
worktree in the same environment, alternating with this checkout's for ``--rounds`` rounds, so that other load
on the machine hits both: the ratio of the medians is the comparison, never a figure from another day.

    .venv/bin/python benchmarks/demo_hardware.py [--cases 20] [--baseline-ref 4ddc0e4 --rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


class GpuSampler:
    """Utilisation (%) and memory used (MiB) of GPU 0, every half second, through nvidia-smi."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while shutil.which("nvidia-smi") and not self._stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
                                  "-i", "0"], capture_output=True, text=True).stdout.strip()
            if out:
                utilisation, memory = (float(v) for v in out.split(","))
                self.samples.append((utilisation, memory))
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "no samples"
        busy = [u for u, _ in self.samples if u > 0]
        return (f"GPU utilisation mean {sum(u for u, _ in self.samples) / len(self.samples):.0f}% "
                f"(max {max(u for u, _ in self.samples):.0f}%, busy in {len(busy)}/{len(self.samples)} samples), "
                f"peak memory {max(m for _, m in self.samples):.0f} MiB")


def run_demo(out: Path, cases: int, backend: str | None, source: Path | None = None) -> tuple[dict, float]:
    """The demo as a subprocess; ``source``: a checkout whose package is imported instead (kernels included,
    through PYTHONPATH)."""
    command = [sys.executable, "-m", "jupyter_medagent.cli", "demo", "--out", str(out), "--cases", str(cases), "--json"]
    if backend:
        command += ["--backend", backend]
    env = dict(os.environ, PYTHONPATH=str(source)) if source else None
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=source)
    wall = time.monotonic() - started
    if not result.stdout.strip():
        raise SystemExit(f"the demo printed no summary:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout), wall


def plan_of(summary: dict) -> dict:
    notebook = json.loads(Path(summary["notebook"]).read_text())
    return notebook["metadata"]["medagent"]["plan"]


def row(name: str, summary: dict, wall: float, gpu: str) -> None:
    plan = plan_of(summary)
    t = plan["training"]
    print(f"{name}:")
    print(f"  machine     {plan['compute']['device']}: {plan['compute'].get('gpu_name') or ''} "
          f"{plan['compute']['cpu_cores']} cores")
    print(f"  plan        {plan['recipe']}, {t['dims']}D UNet {t['network']['channels']}, device {t['device']}, "
          f"{t['precision']}, batch {t['batch_size']} of {t['patch']}, {t['steps']} steps, {t['workers']} workers, "
          f"{t['threads']} threads (estimated {t['estimated_seconds']} s)")
    print(f"  result      {summary['status']}; Dice {summary['dice_mean']:.3f} "
          f"({', '.join(f'{k} {v:.3f}' for k, v in summary['dice'].items())}); EF error {summary['ef_abs_error']:.2f} "
          f"vs labels, {summary['demo']['ef_abs_error_vs_truth']} vs truth; re-executed {summary['reexecuted_ok']}")
    print(f"  time        wall {wall:.1f} s (demo's own count {summary['seconds']} s); agent's training "
          f"{summary['time_split']['training_seconds']} s")
    if gpu:
        print(f"  GPU         {gpu}")


def compare_with(ref: str, rounds: int, cases: int) -> None:
    """This checkout's demo against ``ref``'s, alternating, on this machine in this run."""
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        baseline_tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(baseline_tree), ref], check=True,
                       capture_output=True)
        try:
            walls: dict[str, list[float]] = {"this checkout": [], ref: []}
            for k in range(rounds):
                for name, source in ((ref, baseline_tree), ("this checkout", None)):
                    summary, wall = run_demo(Path(tmp) / f"{name.replace(' ', '-')}-{k}", cases, None, source)
                    walls[name].append(wall)
                    dice = summary.get("dice_mean")
                    print(f"round {k + 1}, {name}: {summary['status']} in {wall:.1f} s, training "
                          f"{summary.get('time_split', {}).get('training_seconds')} s, Dice "
                          f"{dice if dice is None else round(dice, 3)}, EF error "
                          f"{summary.get('ef_abs_error') and round(summary['ef_abs_error'], 2)}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(baseline_tree)],
                           capture_output=True)
    this, base = statistics.median(walls["this checkout"]), statistics.median(walls[ref])
    print(f"median wall: this checkout {this:.1f} s, {ref} {base:.1f} s; ratio {this / base:.2f} "
          f"({'slower' if this > base else 'no slower'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--baseline-ref", help="a git commit whose demo is the baseline, run alternately in this run")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the comparison (default 2)")
    args = parser.parse_args()
    if args.baseline_ref:
        compare_with(args.baseline_ref, args.rounds, args.cases)
        return
    with tempfile.TemporaryDirectory() as tmp:
        with GpuSampler() as sampler:
            summary, wall = run_demo(Path(tmp) / "planned", args.cases, None)
        row("demo, planned for this machine", summary, wall, sampler.summary() if sampler.samples else "")
        if plan_of(summary)["training"]["device"] == "cpu":
            print("This machine has no GPU the plan could use: the plan above is the CPU plan (the baseline).")
            return
        baseline, base_wall = run_demo(Path(tmp) / "cpu", args.cases, "offline:device=cpu")
        row("same demo, plan held to the CPU (baseline)", baseline, base_wall, "")
        print(f"speed-up: wall {base_wall / wall:.2f}x, training "
              f"{baseline['time_split']['training_seconds'] / max(summary['time_split']['training_seconds'], 0.1):.2f}x")


if __name__ == "__main__":
    main()
