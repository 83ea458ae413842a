"""Executors: where the agent's cells run. Both return the same ExecutionResult."""

from jupyter_medagent.kernel.client import KernelClientExecutor
from jupyter_medagent.kernel.inprocess import InProcessExecutor

__all__ = ["InProcessExecutor", "KernelClientExecutor"]
