"""Backends: who decides the agent's next step. ``offline`` (the default) needs no network;
``anthropic:MODEL`` and ``openai:MODEL[@URL]`` drive real models through their official SDKs."""

from jupyter_medagent.backends.config import make_backend, make_judges

__all__ = ["make_backend", "make_judges"]
