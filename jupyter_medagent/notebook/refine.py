"""Build the refined notebook with nbformat and verify it by re-executing it with nbclient."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from jupyter_medagent.notebook.draft import DraftCell

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def free_path(path) -> tuple[Path, bool]:
    """The path to write to, never a user's own notebook: (path, renamed).

    A file at ``path`` written by an earlier medagent run (metadata["medagent"]) may be replaced;
    any other file is kept and the next free name ``stem-1.ipynb``, ``stem-2.ipynb``... is used.
    """
    path = Path(path)
    candidate, n = path, 0
    while candidate.exists() and not _written_by_medagent(candidate):
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate, candidate != path


def _written_by_medagent(path: Path) -> bool:
    try:
        return "medagent" in json.loads(path.read_text()).get("metadata", {})
    except (OSError, ValueError):
        return False


def _code_cell(cell: DraftCell, with_outputs: bool):
    code = new_code_cell(cell.source, metadata={"medagent": {"id": cell.id, "revisions": cell.revisions}})
    if with_outputs:
        code.outputs = [nbformat.from_dict(o) for o in cell.outputs]
    return code


def refined_notebook(request: str, cells: list[DraftCell], metrics: dict[str, Any], provenance: dict[str, Any],
                     *, summary: str = "", partial: bool = False, plan_markdown: str = "") -> nbformat.NotebookNode:
    """Title, the plan (when the backend made one), then each surviving cell preceded by its note, then the
    results table; provenance in metadata."""
    nb = new_notebook(metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}})
    intro = f"# {_title(request)}\n\n**Request:** {request.strip()}\n\n"
    intro += ("*Draft written while the agent works: every cell so far, including ones that failed.*"
              if partial else "*Written by jupyter_medagent. Each step below says what it does and why; "
              "the notebook re-runs top to bottom on its own.*")
    nb.cells.append(new_markdown_cell(intro))
    if plan_markdown:
        nb.cells.append(new_markdown_cell(plan_markdown))
    for cell in cells:
        status = "" if cell.status == "ok" else f"  \n*(status: {cell.status})*"
        nb.cells.append(new_markdown_cell(cell.note + status))
        nb.cells.append(_code_cell(cell, with_outputs=True))
    if not partial:
        nb.cells.append(new_markdown_cell(results_markdown(metrics, summary)))
    nb.metadata["medagent"] = provenance
    return nb


def _title(request: str) -> str:
    first = request.strip().splitlines()[0] if request.strip() else "Analysis"
    return first if len(first) <= 90 else first[:87] + "..."


def results_markdown(metrics: dict[str, Any], summary: str) -> str:
    lines = ["## Results", ""]
    if summary:
        lines += [summary, ""]
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if scalars:
        lines += ["| measure | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in scalars.items()]
    return "\n".join(lines)


def write_notebook(nb: nbformat.NotebookNode, path) -> Path:
    """Write atomically, so a crash never leaves half a file; a failed write (disk full, file too large)
    leaves no temporary file behind and raises NotebookWriteError naming the path."""
    from jupyter_medagent.errors import NotebookWriteError

    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".medagent-", suffix=".ipynb")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            nbformat.write(nb, handle)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise NotebookWriteError(f"could not write the notebook {path}: {exc.strerror or exc}") from exc
    return path


def reexecute_notebook(path, timeout: float | None = 1800, *, kernel_manager=None, cwd=None,
                       scrub=None) -> tuple[bool, str | None]:
    """Run the notebook top to bottom in a fresh kernel (``kernel_manager``: a sandboxed or guarded one,
    not started; ``cwd``: its working directory, default the notebook's folder); keep the fresh outputs,
    passed through ``scrub`` before they are written."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", km=kernel_manager,
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    try:
        client.execute(cleanup_kc=True)  # shut the kernel down also when the manager was given to us
    except CellExecutionError as exc:
        return False, _first_lines(str(exc))
    except Exception as exc:  # kernel died, time-out: the notebook did not re-run
        return False, f"{type(exc).__name__}: {_first_lines(str(exc))}"
    finally:
        write_notebook(scrub(nb) if scrub else nb, path)
    return True, None


def _first_lines(text: str, n: int = 6) -> str:
    from jupyter_medagent.kernel.outputs import strip_ansi

    return "\n".join(strip_ansi(text).strip().splitlines()[-n:])
