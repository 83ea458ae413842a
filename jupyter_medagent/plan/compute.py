"""The compute fingerprint: what the machine a kernel runs on can do (nnU-Net plans from the data's
fingerprint and the GPU's memory; we add the device kind, the usable CPU cores and free RAM).

It is measured inside the kernel that will run the cells (``compute_fingerprint()``), because that
kernel may live on another machine than the agent (a kernel gateway, a sandbox with CPU limits).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

# Where cgroup limits live (v2 first); a container's quota is what the kernel may really use.
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
CGROUP_MEMORY_MAX = Path("/sys/fs/cgroup/memory.max")
CGROUP_MEMORY_CURRENT = Path("/sys/fs/cgroup/memory.current")
GB = 1024**3


@dataclass
class ComputeFingerprint:
    device: str  # "cuda", "mps" or "cpu": the best device torch can use here
    cpu_cores: int  # usable cores: CPU affinity and cgroup quota taken into account
    ram_free_gb: float
    gpu_name: str | None = None
    gpu_memory_gb: float = 0.0  # total
    gpu_free_gb: float = 0.0
    bf16: bool = False  # the GPU computes in bfloat16 natively (NVIDIA compute capability 8.0 and later)

    @property
    def has_gpu(self) -> bool:
        return self.device in ("cuda", "mps")

    def describe(self) -> str:
        """One line for the notebook: what this machine offers."""
        cores = f"{self.cpu_cores} CPU core{'s' if self.cpu_cores != 1 else ''}, {self.ram_free_gb:.0f} GB RAM free"
        if self.device == "cuda":
            return (f"{self.gpu_name} ({self.gpu_memory_gb:.0f} GB, {self.gpu_free_gb:.0f} GB free"
                    f"{', bf16' if self.bf16 else ''}); {cores}")
        if self.device == "mps":
            return f"Apple GPU (Metal, memory shared with the CPU); {cores}"
        return f"CPU only; {cores}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ComputeFingerprint:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def usable_cpu_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup CPU quota (containers, CI)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_cpu_quota() -> float | None:
    try:
        if CGROUP_CPU_MAX.exists():
            limit, period = CGROUP_CPU_MAX.read_text().split()[:2]
            return None if limit == "max" else int(limit) / int(period)
        if CGROUP_V1_QUOTA.exists():
            quota, period = int(CGROUP_V1_QUOTA.read_text()), int(CGROUP_V1_PERIOD.read_text())
            return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None
    return None


def free_ram_gb() -> float:
    """Available memory, capped by a cgroup memory limit when there is one."""
    import psutil

    free = psutil.virtual_memory().available
    try:
        limit = CGROUP_MEMORY_MAX.read_text().strip()
        if limit != "max":
            free = min(free, int(limit) - int(CGROUP_MEMORY_CURRENT.read_text()))
    except (OSError, ValueError):
        pass
    return round(max(free, 0) / GB, 1)


def compute_fingerprint() -> ComputeFingerprint:
    """Measure this machine (call it in the kernel that will train)."""
    import torch

    fingerprint = ComputeFingerprint("cpu", usable_cpu_cores(), free_ram_gb())
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        fingerprint.device = "cuda"
        fingerprint.gpu_name = torch.cuda.get_device_name(0)
        fingerprint.gpu_memory_gb = round(total / GB, 1)
        fingerprint.gpu_free_gb = round(free / GB, 1)
        fingerprint.bf16 = torch.cuda.get_device_capability(0)[0] >= 8  # native, not emulated
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        fingerprint.device = "mps"
        fingerprint.gpu_name = "Apple GPU"
        fingerprint.gpu_memory_gb = fingerprint.gpu_free_gb = fingerprint.ram_free_gb  # unified memory
    return fingerprint
