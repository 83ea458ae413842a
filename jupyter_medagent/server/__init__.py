"""The Jupyter server extension: MedAgent runs bound to notebook kernels, under ``/medagent/``."""

from __future__ import annotations


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_medagent.server.handlers import setup_handlers
    from jupyter_medagent.server.runs import RunManager

    setup_handlers(serverapp.web_app, RunManager(serverapp.root_dir, serverapp.kernel_manager))
    serverapp.log.info("jupyter_medagent: /medagent/ endpoints ready")
