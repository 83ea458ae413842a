"""Montage rendering speed: jupyter_medagent's renderer vs a matplotlib baseline, same run, same data.

Data: an in-memory 256x256x128 volume with a 4-class label (MONAI's synthetic spheres).
Prints the median of N runs for each and the speed-up. Target: <= 150 ms median.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np


def matplotlib_montage(image: np.ndarray, label: np.ndarray, spacing) -> bytes:
    """What one writes by hand: three planes through the centre with contours, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cx, cy, cz = (s // 2 for s in image.shape)
    planes = [(image[:, :, cz], label[:, :, cz], spacing[1] / spacing[0]),
              (image[:, cy, :], label[:, cy, :], spacing[2] / spacing[0]),
              (image[cx, :, :], label[cx, :, :], spacing[2] / spacing[1])]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, (img, lab, aspect) in zip(axes, planes):
        ax.imshow(img.T, cmap="gray", origin="lower", aspect=aspect)
        ax.contour(lab.T, levels=[0.5, 1.5, 2.5, 3.5], colors=["r", "c", "y", "g"], linewidths=0.8, origin="lower")
        ax.axis("off")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from monai.data import create_test_image_3d

    from jupyter_medagent.imaging import render_montage

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    image, label = create_test_image_3d(256, 256, 128, num_objs=8, rad_max=40, num_seg_classes=4, noise_max=0.3,
                                        random_state=np.random.RandomState(0))
    spacing = (1.0, 1.0, 1.5)
    render_montage(image, label, spacing=spacing)  # warm-up (font loading)
    ours = timed(lambda: render_montage(image, label, spacing=spacing, title="spheres"), args.repeats)
    baseline = timed(lambda: matplotlib_montage(image, label, spacing), max(3, args.repeats // 3))
    print(f"volume 256x256x128, 4-class label, median of {args.repeats} runs")
    print(f"jupyter_medagent render_montage: {ours * 1000:7.1f} ms")
    print(f"matplotlib baseline:             {baseline * 1000:7.1f} ms")
    print(f"speed-up: {baseline / ours:.1f}x   target <= 150 ms: {'met' if ours <= 0.150 else 'NOT met'}")


if __name__ == "__main__":
    main()
