"""Errors users see. Each names the file or input at fault and what is wrong with it."""


class MedagentError(Exception):
    """Base for every error the CLI reports as a clean message instead of a traceback."""


class DataError(MedagentError):
    """A file or folder cannot be used: unreadable, wrong kind, wrong shape, missing pair."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(MedagentError):
    """A backend, key, server or option is missing or malformed."""


class BackendError(MedagentError):
    """A model backend could not answer: server unreachable, request refused, time-out after retries."""


class KernelDied(MedagentError):
    """The kernel a run was using is gone (killed, out of memory, past its CPU-time limit)."""


class NotebookWriteError(MedagentError):
    """A notebook could not be written (disk full, file too large, no permission)."""
