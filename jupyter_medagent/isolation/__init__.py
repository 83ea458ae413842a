"""Isolation of model-written code: sandboxed kernels (bubblewrap) and the runtime guard (audit hook).

``KernelIsolation`` is what ``session.build_agent`` decides for a run and hands to the front door's
executor factory: how kernels the project starts are isolated, and the guard's policy for any
kernel the agent writes into (the user's own included). The kernels themselves are started in
``kernel/isolated.py``, a layer above: isolation never imports the executors that use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jupyter_medagent.contracts.options import ISOLATION_MODES
from jupyter_medagent.isolation import guard
from jupyter_medagent.isolation.sandbox import KernelLimits, sandbox_problem



@dataclass
class KernelIsolation:
    """``mode`` in force for kernels the project starts: "sandbox" (bubblewrap plus the guard), "guard"
    (a plain process with the guard) or "off" (a plain process; the explicit opt-out)."""

    mode: str
    output_dir: Path
    data_dir: str | None = None
    limits: KernelLimits = field(default_factory=KernelLimits.default)
    notice: str | None = None  # why the sandbox is not in force, said once at the start of the run
    gateway: str | None = None  # URL of the kernel gateway whose kernels the run starts

    @property
    def sandboxed(self) -> bool:
        return self.mode == "sandbox"

    def guard_policy(self, *, kernel_in_sandbox: bool | None = None) -> dict | None:
        """The guard's policy for a kernel of this run; None with isolation off. ``kernel_in_sandbox``: whether that
        kernel runs in the sandbox (default: the run's own kernels do when the run is sandboxed). There /tmp is
        private; elsewhere (the user's own kernel) /tmp is the host's, shared and holding other people's code, so
        the guard makes a private temporary folder in the kernel instead."""
        if self.mode == "off":
            return None
        in_sandbox = self.sandboxed if kernel_in_sandbox is None else kernel_in_sandbox
        return guard.policy([self.output_dir], [self.data_dir] if self.data_dir else [],
                            tmp="/tmp" if in_sandbox else "private")


__all__ = ["ISOLATION_MODES", "KernelIsolation", "KernelLimits", "guard", "sandbox_problem"]
