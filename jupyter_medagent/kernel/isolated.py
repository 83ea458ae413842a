"""Kernels of the kind a run's ``KernelIsolation`` decided: in the bubblewrap sandbox, behind the runtime guard,
plain, or on a kernel gateway; their working directory is the run's output folder."""

from __future__ import annotations

from jupyter_medagent.isolation import KernelIsolation
from jupyter_medagent.isolation.sandbox import kernel_manager
from jupyter_medagent.kernel.client import KernelClientExecutor
from jupyter_medagent.kernel.gateway import gateway_kernel_manager, start_gateway_kernel


def new_kernel_manager(isolation: KernelIsolation, *, armed_always: bool = False, asynchronous: bool = False):
    """A manager for a new kernel of the run's kind (not started)."""
    if isolation.gateway:
        return gateway_kernel_manager(isolation.gateway)
    return kernel_manager(sandboxed=isolation.sandboxed, output_dir=isolation.output_dir, data_dir=isolation.data_dir,
                          limits=isolation.limits, guard_policy=isolation.guard_policy() if armed_always else None,
                          armed_always=armed_always, asynchronous=asynchronous)


def new_kernel_executor(isolation: KernelIsolation, **kwargs) -> KernelClientExecutor:
    """A KernelClientExecutor on a new kernel of the run's kind, its working directory the output folder."""
    if isolation.gateway:
        return start_gateway_kernel(isolation.gateway, cwd=isolation.output_dir, guard=isolation.guard_policy(), **kwargs)
    return KernelClientExecutor(cwd=isolation.output_dir, manager=new_kernel_manager(isolation),
                                guard=isolation.guard_policy(), **kwargs)
