"""Isolation of model-written code: sandboxed kernels (bubblewrap) and the runtime guard (audit hook).

``KernelIsolation`` is what ``session.build_agent`` decides for a run and hands to the front door's
executor factory: how kernels the project starts are isolated, and the guard's policy for any
kernel the agent writes into (the user's own included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jupyter_medagent.contracts.options import ISOLATION_MODES
from jupyter_medagent.isolation import guard
from jupyter_medagent.isolation.sandbox import KernelLimits, kernel_manager, sandbox_problem



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

    def guard_policy(self) -> dict | None:
        """The guard's policy for this run's kernels; None with isolation off. In the sandbox /tmp is
        private, elsewhere the guard makes a private temporary folder in the kernel."""
        if self.mode == "off":
            return None
        return guard.policy([self.output_dir], [self.data_dir] if self.data_dir else [],
                            tmp="/tmp" if self.sandboxed else "private")

    def kernel_manager(self, *, armed_always: bool = False, asynchronous: bool = False):
        """A manager for a new kernel of this run's kind (not started)."""
        if self.gateway:
            from jupyter_medagent.kernel.gateway import gateway_kernel_manager

            return gateway_kernel_manager(self.gateway)
        return kernel_manager(sandboxed=self.sandboxed, output_dir=self.output_dir, data_dir=self.data_dir,
                              limits=self.limits, guard_policy=self.guard_policy() if armed_always else None,
                              armed_always=armed_always, asynchronous=asynchronous)

    def new_kernel_executor(self, **kwargs):
        """A KernelClientExecutor on a new kernel of this kind, its working directory the output folder."""
        from jupyter_medagent.kernel import KernelClientExecutor

        if self.gateway:
            from jupyter_medagent.kernel.gateway import start_gateway_kernel

            return start_gateway_kernel(self.gateway, cwd=self.output_dir, guard=self.guard_policy(), **kwargs)

        return KernelClientExecutor(cwd=self.output_dir, manager=self.kernel_manager(), guard=self.guard_policy(),
                                    **kwargs)


__all__ = ["ISOLATION_MODES", "KernelIsolation", "KernelLimits", "guard", "sandbox_problem"]
