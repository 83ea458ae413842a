"""A chest-X-ray-sized folder, as a user downloads the public Kaggle set: does ``medagent inspect`` cope?

Builds ``chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg`` with the public set's counts (5,856 JPEGs:
train 1,341 + 3,875, val 8 + 8, test 234 + 390), each a synthetic radiograph of 1,000-2,000 pixels a side,
then measures ``medagent inspect`` in a subprocess, as a user runs it: seconds and peak memory of the
process (targets on 2 cores: <= 60 s, <= 2 GB). ``--run`` also times ``medagent run`` on the folder.

    .venv/bin/python benchmarks/chest_xray_size.py [--scale 1.0] [--keep DIR] [--run]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from acdc_size import measured  # benchmarks/ is on the path: it is the script's own folder

COUNTS = {("train", "NORMAL"): 1341, ("train", "PNEUMONIA"): 3875, ("val", "NORMAL"): 8, ("val", "PNEUMONIA"): 8,
          ("test", "NORMAL"): 234, ("test", "PNEUMONIA"): 390}


def _radiograph(args: tuple[Path, int, bool]) -> None:
    path, seed, pneumonia = args
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(1000, 2000)), int(rng.integers(1000, 2000))
    y, x = np.ogrid[0:height, 0:width]
    image = np.full((height, width), 140, np.uint8)
    for side in (0.3, 0.7):
        lung = ((x / width - side) / 0.15) ** 2 + ((y / height - 0.5) / 0.3) ** 2 <= 1
        image[lung] = 50
    if pneumonia:
        cx, cy = rng.choice([0.3, 0.7]) * width, rng.uniform(0.35, 0.65) * height
        image = image + (90 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * (0.1 * width) ** 2))).astype(np.uint8)
    image = image + rng.integers(0, 6, (height, width), dtype=np.uint8)  # film grain: real JPEG work to decode
    Image.fromarray(image).save(path, quality=90)


def build(root: Path, scale: float) -> int:
    jobs = []
    for (split, name), n in COUNTS.items():
        folder = root / "chest_xray" / split / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(max(1, round(n * scale))):
            stem = f"IM-{len(jobs):04d}-0001" if name == "NORMAL" else f"person{len(jobs)}_bacteria_{i}"
            jobs.append((folder / f"{stem}.jpeg", len(jobs), name == "PNEUMONIA"))
    todo = [j for j in jobs if not j[0].exists()]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(_radiograph, todo, chunksize=16))
    return len(jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the public set's image counts")
    parser.add_argument("--keep", type=Path, help="build the folder here and keep it (reused when it exists)")
    parser.add_argument("--run", action="store_true", help="also time `medagent run` on the folder")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="chest-xray-size-"))
    started = time.monotonic()
    n = build(root, args.scale)
    print(f"built {n} JPEGs in {time.monotonic() - started:.0f} s under {root}", flush=True)
    medagent = [sys.executable, "-m", "jupyter_medagent.cli"]
    result, seconds, peak = measured(medagent + ["inspect", str(root / "chest_xray"), "--json"], root)
    if result.returncode != 0:
        sys.exit(f"inspect failed: {result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    figures = {"images": n, "cpu_cores": os.cpu_count(), "inspect_seconds": round(seconds, 1),
               "inspect_peak_gb": round(peak, 2), "layout": report["card"]["layout"],
               "findings": sorted({f["kind"] for f in report["findings"]})}
    if args.run:
        result, seconds, peak = measured(medagent + ["run", "Train a model to detect pneumonia in these chest X-rays.",
                                                     "--data", str(root / "chest_xray"), "--out", "xray.ipynb", "--json"],
                                         root)
        summary = json.loads(result.stdout) if result.stdout.strip() else {}
        figures.update(run_seconds=round(seconds, 1), run_peak_gb=round(peak, 2), run_status=summary.get("status"),
                       balanced_accuracy=summary.get("metrics", {}).get("balanced_accuracy"))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
