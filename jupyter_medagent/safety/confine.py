"""Host-side tools read for the model only what the run was given: its data folder, resolved, and
nothing a symbolic link inside it leads to elsewhere (links a cell made in a writable folder included)."""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_medagent.contracts.errors import DataError


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip("/") + "/")


def confined_data_folder(path: str | os.PathLike | None, data_dir: str | os.PathLike | None) -> Path:
    """The folder a host-side tool may read for the model: ``path`` (relative paths are taken inside the
    data folder) when it lies inside the run's data folder once every link is resolved, and when nothing
    under it is a link that leads out; otherwise a DataError that says why."""
    if not data_dir:
        raise DataError(path or "(no folder)", "no data folder was given for this run; host-side tools read only "
                                               "the run's data folder")
    root = os.path.realpath(data_dir)
    requested = Path(data_dir) if path in (None, "") else Path(path)
    if not requested.is_absolute():
        requested = Path(root) / requested
    real = os.path.realpath(requested)
    if not _inside(real, root):
        raise DataError(requested, f"outside the run's data folder {root} (it resolves to {real}); host-side tools "
                                   "read only the data folder")
    escaping = leaving_links(real, root)
    if escaping:
        shown = "; ".join(f"{link} -> {target}" for link, target in escaping[:5])
        raise DataError(real, f"{len(escaping)} symbolic link(s) lead out of the data folder {root} and are not "
                              f"followed: {shown}. Remove them, or give the folder they lead to as the data folder")
    return Path(real)


def leaving_links(folder: str, root: str) -> list[tuple[str, str]]:
    """Links under ``folder`` (walked without following any) whose target resolves outside ``root``."""
    found = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = os.path.join(current, name)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if not _inside(target, root):
                    found.append((path, target))
    return found
