"""Backends: who decides the agent's next step. ``offline`` (the default) needs no network."""

from jupyter_medagent.backends.config import make_backend

__all__ = ["make_backend"]
