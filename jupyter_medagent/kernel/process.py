"""The local process behind a jupyter_client kernel manager, for what only the process can tell or do:
its exit status, its stderr, being killed at once from any thread."""

from __future__ import annotations

import subprocess

from jupyter_client import KernelManager
from jupyter_client.provisioning import LocalProvisioner


def kernel_process(manager: object) -> subprocess.Popen | None:
    """The kernel's process when ``manager`` started it on this machine; None for a kernel elsewhere
    (a gateway's), or none started yet."""
    provisioner = manager.provisioner if isinstance(manager, KernelManager) else None
    return provisioner.process if isinstance(provisioner, LocalProvisioner) else None


def kill_kernel(manager: object) -> None:
    """Kill a local kernel at once (thread-safe, unlike the manager's own coroutines)."""
    process = kernel_process(manager)
    if process is not None:
        process.kill()
