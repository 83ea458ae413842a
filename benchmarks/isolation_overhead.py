"""What the sandbox and the runtime guard cost: kernel start and the demo's kind of training step, in a
plain kernel and in a sandboxed, guarded one, interleaved so that other load on the machine hits both.

    .venv/bin/python benchmarks/isolation_overhead.py [--rounds 3] [--steps 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from jupyter_medagent.isolation import KernelIsolation
from jupyter_medagent.kernel import KernelClientExecutor, new_kernel_executor

# The demo's network and batch: a MONAI 2D UNet (16-32-64-128) on 16 slices of 128 x 128, Dice + CE.
TRAIN = """
import time, torch
from monai.networks.nets import UNet
from monai.losses import DiceCELoss
torch.manual_seed(0); torch.set_num_threads(2)
model = UNet(spatial_dims=2, in_channels=1, out_channels=4, channels=(16, 32, 64, 128), strides=(2, 2, 2))
loss_fn, opt = DiceCELoss(to_onehot_y=True, softmax=True), torch.optim.Adam(model.parameters(), 1e-3)
x, y = torch.randn(16, 1, 128, 128), torch.randint(0, 4, (16, 1, 128, 128))
start = time.perf_counter()
for _ in range(STEPS):
    opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); opt.step()
print(time.perf_counter() - start)
"""


def measure(make, steps: int) -> tuple[float, float]:
    started = time.perf_counter()
    executor = make()
    ready = time.perf_counter() - started
    try:
        result = executor.execute(TRAIN.replace("STEPS", str(steps)))
        if result.error:
            raise RuntimeError(result.error)
        return ready, float(result.outputs[0]["text"])
    finally:
        executor.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="overhead-"))
    kinds = {"plain kernel": lambda: KernelClientExecutor(cwd=out),
             "sandbox + guard": lambda: new_kernel_executor(KernelIsolation("sandbox", out))}
    figures: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    for _ in range(args.rounds):
        for name, make in kinds.items():
            figures[name].append(measure(make, args.steps))
    for name, rows in figures.items():
        print(f"{name:16s} kernel ready {statistics.median(r[0] for r in rows):.2f} s (median of {args.rounds}); "
              f"{args.steps} training steps {statistics.median(r[1] for r in rows):.2f} s "
              f"({1000 * statistics.median(r[1] for r in rows) / args.steps:.0f} ms/step)")


if __name__ == "__main__":
    main()
