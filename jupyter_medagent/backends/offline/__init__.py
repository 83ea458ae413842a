"""The offline backend: a deterministic expert planner, the default, needing no network."""

from jupyter_medagent.backends.offline.planner import OfflineBackend

__all__ = ["OfflineBackend"]
