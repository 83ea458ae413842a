"""The demo on this machine's hardware: what the plan chose, and how fast and how well it ran.

Runs ``medagent demo`` as a user would (a subprocess, default settings) and prints wall time, training
time, the plan's device/precision/batch/steps, Dice, EF error and re-execution. While it runs, GPU
utilisation and memory are sampled with nvidia-smi when there is a GPU. On a GPU machine the same demo is
run again with the plan held to the CPU (``offline:device=cpu``): the baseline of the same run, so the
ratio shows what the GPU bought. Targets (issue 9): on the 2-core CPU, no slower than before the plan
(139.5 s, Dice 0.973, EF error 1.51); on an H100-class GPU, <= 60 s with visible GPU utilisation.

    .venv/bin/python benchmarks/demo_hardware.py [--cases 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
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


def run_demo(out: Path, cases: int, backend: str | None) -> tuple[dict, float]:
    command = [sys.executable, "-m", "jupyter_medagent.cli", "demo", "--out", str(out), "--cases", str(cases), "--json"]
    if backend:
        command += ["--backend", backend]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20)
    args = parser.parse_args()
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
