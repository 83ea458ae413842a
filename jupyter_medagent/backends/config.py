"""Backend selectors: ``offline`` (the default) or ``offline:steps=N`` for a shorter/longer training."""

from __future__ import annotations

from jupyter_medagent.agent.protocols import Backend
from jupyter_medagent.errors import ConfigError

DEFAULT_BACKEND = "offline"


def make_backend(selector: str | None = None) -> Backend:
    selector = (selector or DEFAULT_BACKEND).strip()
    kind, _, options = selector.partition(":")
    if kind == "offline":
        from jupyter_medagent.backends.offline import OfflineBackend, Settings

        settings = Settings()
        for item in filter(None, options.split(",")):
            key, _, value = item.partition("=")
            if not hasattr(settings, key) or key == "channels":
                raise ConfigError(f"unknown offline backend option {key!r} in {selector!r}")
            setattr(settings, key, type(getattr(settings, key))(value))
        return OfflineBackend(settings)
    raise ConfigError(f"unknown backend {selector!r}: this version ships the 'offline' backend "
                      "(model backends such as anthropic:MODEL are not available yet)")
