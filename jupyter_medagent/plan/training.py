"""How to train on this machine: device, precision, network size, patch, batch, workers and steps,
derived from the data's fingerprint and the compute fingerprint (nnU-Net's experiment planner does the
same from the GPU memory; we also budget time, because our users wait for the notebook).

The time model is deliberately simple and stated: seconds per step = samples x voxels x network cost /
device rate + a fixed overhead. Its constants were measured on the project's reference machines:
2 CPU cores here (the demo's 2D UNet, 450 steps of 16 x 128x128 slices in about 57 s) and an H100
(a 2D UNet of nnU-Net's size, 32..512 channels, 18.1 ms per step of 16 x 128x128 slices with bf16).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from jupyter_medagent.plan.compute import ComputeFingerprint

# Networks (MONAI UNet): channels per level, strides between levels.
SMALL_2D = {"channels": [8, 16, 32, 64], "strides": [2, 2, 2], "res_units": 1}  # CPU: quality in about a minute
NNUNET_2D = {"channels": [32, 64, 128, 256, 512], "strides": [2, 2, 2, 2], "res_units": 2}  # GPU: nnU-Net's size
SMALL_3D = {"channels": [8, 16, 32, 64], "strides": [2, 2, 2], "res_units": 1}
NNUNET_3D = {"channels": [32, 64, 128, 256, 320], "strides": [2, 2, 2, 2], "res_units": 2}

# Device rates in network-cost units per second (see network_cost), and per-step overheads.
CPU_RATE_2_CORES = 5.38e8  # measured here: 16 x 128^2 x cost(SMALL_2D) per (127 - 2) ms step on 2 cores
CPU_CORE_SCALING = 0.67  # 16 cores train the same network about 4x faster than 2 (measured: 46 s vs 15 s)
GPU_RATE_H100 = 1.0e11  # measured: 16 x 128^2 x cost(NNUNET_2D) per (18.1 - 5) ms
GPU_REFERENCE_MEMORY_GB = 80.0  # smaller GPUs are assumed proportionally slower, down to a quarter
STEP_OVERHEAD_S = {"cpu": 0.002, "cuda": 0.005, "mps": 0.02}

# Time budgets for the agent's own training run (the verification re-run trains again).
TRAINING_BUDGET_S = {"cpu": 57.0, "cuda": 20.0, "mps": 60.0}
MIN_STEPS, MAX_STEPS = 300, 4000
MAX_BATCH_2D, MAX_BATCH_3D = 32, 2  # nnU-Net trains 3D with batches of 2
BYTES_PER_ACTIVATION = 16  # values kept per voxel and channel for the backward pass (several tensors per block)
GPU_MEMORY_SHARE = 0.6  # leave room for the allocator, the optimiser and other processes


@dataclass
class TrainingConfig:
    dims: int  # 2: slices; 3: volumes
    network: dict  # MONAI UNet: channels, strides, res_units
    patch: list[int]  # training patch (in-plane for 2D), a multiple of the network's total stride
    batch_size: int
    steps: int
    device: str  # planned device; the notebook checks again where it runs
    precision: str  # "bf16" (autocast) or "fp32"
    threads: int
    workers: int  # data-loader worker processes
    estimated_seconds: float
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self, compute: ComputeFingerprint) -> str:
        """The sentence the notebook shows, e.g. 'Training on NVIDIA H100 (80 GB), bf16 autocast, batch 32'."""
        if self.device == "cuda":
            where = f"{compute.gpu_name} ({compute.gpu_memory_gb:.0f} GB)"
        elif self.device == "mps":
            where = "the Apple GPU"
        else:
            where = f"{self.threads} CPU core{'s' if self.threads != 1 else ''}"
        precision = "bf16 autocast" if self.precision == "bf16" else "full precision"
        return (f"Training on {where}, {precision}, batch {self.batch_size} of {' x '.join(map(str, self.patch))}, "
                f"{self.steps} steps (about {self.estimated_seconds:.0f} s)")


def total_stride(network: dict) -> int:
    return int(math.prod(network["strides"]))


def network_cost(network: dict, dims: int) -> float:
    """Relative compute per voxel: sum over levels of channels^2 x kernel size / voxels merged by the strides."""
    kernel = 3**dims
    cost, shrink = 0.0, 1
    for level, channels in enumerate(network["channels"]):
        cost += channels * channels * kernel / shrink
        if level < len(network["strides"]):
            shrink *= network["strides"][level] ** dims
    return cost / 9  # normalised so that a 2D level of c channels costs c^2


def device_rate(compute: ComputeFingerprint, device: str) -> float:
    if device == "cuda":
        scale = max(0.25, min(1.0, compute.gpu_memory_gb / GPU_REFERENCE_MEMORY_GB))
        return GPU_RATE_H100 * scale
    if device == "mps":
        return CPU_RATE_2_CORES * 4
    return CPU_RATE_2_CORES * (compute.cpu_cores / 2) ** CPU_CORE_SCALING


def seconds_per_step(batch: int, patch: list[int], network: dict, dims: int, compute: ComputeFingerprint,
                     device: str) -> float:
    voxels = math.prod(patch)
    return batch * voxels * network_cost(network, dims) / device_rate(compute, device) + STEP_OVERHEAD_S[device]


def round_up(value: float, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def gpu_batch_limit(patch: list[int], network: dict, dims: int, compute: ComputeFingerprint, bf16: bool) -> int:
    """Largest batch whose activations fit in the GPU's free memory (with a safety share)."""
    voxels, shrink, per_sample = math.prod(patch), 1, 0.0
    for level, channels in enumerate(network["channels"]):
        per_sample += voxels / shrink * channels
        if level < len(network["strides"]):
            shrink *= network["strides"][level] ** dims
    per_sample *= BYTES_PER_ACTIVATION * (0.5 if bf16 else 1.0)
    return max(1, int(compute.gpu_free_gb * GPU_MEMORY_SHARE * 1024**3 // per_sample))


def plan_training(dims: int, image_shape: list[int], compute: ComputeFingerprint, *, device: str | None = None,
                  steps: int | None = None, batch_size: int | None = None) -> TrainingConfig:
    """The training set-up for ``dims``-D training on images of (median) ``image_shape`` on this machine.

    ``device``, ``steps`` and ``batch_size`` override the derived values (the user's or a repair's choice).
    """
    device = device or compute.device
    on_gpu = device in ("cuda", "mps")
    if dims == 2:
        network = NNUNET_2D if on_gpu else SMALL_2D
    else:
        network = NNUNET_3D if on_gpu else SMALL_3D
    stride = total_stride(network)
    reasons = []
    if dims == 2:
        patch = [round_up(s, stride) for s in image_shape[:2]]  # whole slices, as nnU-Net's 2D configuration
    else:
        # Whole volumes when they fit in a 128^3 budget of voxels, else a cube-ish crop (nnU-Net shrinks the
        # largest axis first); prediction then slides a window over the whole volume.
        patch = [round_up(min(s, 128), stride) for s in image_shape[:3]]
        while math.prod(patch) > 128**3:
            axis = max(range(3), key=lambda i: patch[i])
            patch[axis] -= stride
    bf16 = device == "cuda" and compute.bf16
    if device == "cuda":
        fit = gpu_batch_limit(patch, network, dims, compute, bf16)
        batch = min(MAX_BATCH_2D if dims == 2 else MAX_BATCH_3D, fit)
        reasons.append(f"batch {batch}: the largest that fits the GPU's free memory with room to spare, "
                       f"capped at {MAX_BATCH_2D if dims == 2 else MAX_BATCH_3D}")
    else:
        # On a CPU every sample costs time, not memory: fewer samples per step, enough steps to learn.
        per_sample = seconds_per_step(1, patch, network, dims, compute, device) - STEP_OVERHEAD_S[device]
        batch = int(TRAINING_BUDGET_S[device] / (MIN_STEPS * 1.5) / per_sample)
        batch = max(2, min(16 if dims == 2 else 2, batch))
    if batch_size:
        batch = batch_size
    per_step = seconds_per_step(batch, patch, network, dims, compute, device)
    if steps is None:
        steps = int(round(TRAINING_BUDGET_S[device] / per_step, -1))
        steps = max(MIN_STEPS, min(MAX_STEPS, steps))
        reasons.append(f"{steps} steps: about {TRAINING_BUDGET_S[device]:.0f} s of training on this device")
    workers = 0 if device == "cpu" else min(8, max(0, compute.cpu_cores - 2))
    return TrainingConfig(dims, dict(network), patch, batch, steps, device, "bf16" if bf16 else "fp32",
                          compute.cpu_cores, workers, round(per_step * steps, 1), reasons)
