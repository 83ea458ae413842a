"""Kernels served by a Jupyter Kernel Gateway or Enterprise Gateway, through jupyter_server's own gateway
client (REST to start, interrupt and stop kernels; a websocket for messages), so a run on a bigger machine
behaves like a local one: the same executor, Stop and approvals included.

Paths in the generated notebook are absolute: the gateway's kernels must see the data folder at the
same path (a shared file system), as with any remote kernel.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from typing import Any
from collections.abc import Callable

from jupyter_medagent.contracts.errors import MedagentError
from jupyter_medagent.kernel.client import KernelClientExecutor


async def _wait(awaitable):
    return await awaitable


class Blocking:
    """Blocking calls into an asyncio jupyter_client object (the gateway's kernel manager and client):
    every coroutine a method returns is run to completion on the calling thread's event loop."""

    def __init__(self, target: Any):
        self._target = target

    def __getattr__(self, name: str) -> Any:
        from jupyter_core.utils import run_sync

        value = getattr(self._target, name)
        if not callable(value):
            return value

        @functools.wraps(value)
        def call(*args, **kwargs):
            result = value(*args, **kwargs)
            return run_sync(_wait)(result) if inspect.isawaitable(result) else result

        return call


class BlockingGatewayClient(Blocking):
    """The gateway's kernel client, made blocking. Waiting for a message blocks on the channel's queue:
    the client's own asynchronous wait polls in a tight loop and would take a CPU core from the kernel."""

    def get_iopub_msg(self, timeout: float | None = None) -> dict:
        channel = self._target.iopub_channel
        if channel.response_router_finished:
            raise MedagentError("the connection to the kernel gateway was lost")
        message = channel.get(block=True, timeout=timeout)
        channel.task_done()
        return message


def is_gateway_kernel(kernel_manager: Any) -> bool:
    """True for a kernel that lives behind a gateway (JupyterLab started with ``--gateway-url``)."""
    try:
        from jupyter_server.gateway.managers import GatewayKernelManager
    except ImportError:
        return False
    return isinstance(kernel_manager, GatewayKernelManager)


def attach_gateway_kernel(kernel_manager: Any, session_id: str, interrupt: Callable[[], None] | None = None,
                          startup_timeout: float = 60.0, guard: dict | None = None) -> KernelClientExecutor:
    """An executor on a gateway kernel the server already manages (its own websocket and session id)."""
    from jupyter_client.session import Session

    client = BlockingGatewayClient(kernel_manager.client(session=Session(session=session_id)))
    return KernelClientExecutor(client=client, interrupt=interrupt, session_id=session_id,
                                startup_timeout=startup_timeout, guard=guard)


def gateway_kernel_manager(url: str):
    """jupyter_server's manager for one kernel on the gateway at ``url`` (asynchronous, as nbclient expects)."""
    try:
        from jupyter_server.gateway.gateway_client import GatewayClient
        from jupyter_server.gateway.managers import GatewayKernelManager
    except ImportError:
        raise MedagentError("--kernel-gateway needs jupyter_server: pip install 'jupyter_medagent[lab]'") from None
    GatewayClient.instance().url = url.rstrip("/")
    return GatewayKernelManager()


def start_gateway_kernel(url: str, cwd=None, kernel_name: str = "python3", startup_timeout: float = 60.0,
                         guard: dict | None = None, session_id: str | None = None) -> KernelClientExecutor:
    """A new kernel on the gateway at ``url`` (``medagent run --kernel-gateway URL``); closing the executor
    shuts it down."""
    from jupyter_client.session import Session

    manager = Blocking(gateway_kernel_manager(url))
    try:
        manager.start_kernel(kernel_name=kernel_name, cwd=str(cwd) if cwd else None)
    except Exception as exc:  # connection refused, 404, a gateway without that kernel: say which and where
        raise MedagentError(f"the kernel gateway at {url} did not start a {kernel_name} kernel "
                            f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from None
    session_id = session_id or f"medagent-{uuid.uuid4().hex[:12]}"
    client = BlockingGatewayClient(manager.client(session=Session(session=session_id)))
    return KernelClientExecutor(client=client, manager=manager, session_id=session_id, startup_timeout=startup_timeout,
                                guard=guard)
