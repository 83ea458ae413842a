"""Executors: where the agent's cells run. Both return the same ExecutionResult."""

from jupyter_medagent.kernel.client import KernelClientExecutor
from jupyter_medagent.kernel.inprocess import InProcessExecutor
from jupyter_medagent.kernel.isolated import new_kernel_executor, new_kernel_manager

__all__ = ["InProcessExecutor", "KernelClientExecutor", "new_kernel_executor", "new_kernel_manager"]
