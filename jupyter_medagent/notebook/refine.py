"""Build the refined notebook with nbformat and verify it by re-executing it with nbclient."""

from __future__ import annotations

import copy
import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from jupyter_medagent.isolation.outputs import clean_outputs
from jupyter_medagent.notebook.draft import DraftCell



@functools.lru_cache(maxsize=1)
def kernel_metadata() -> dict[str, Any]:
    """The kernelspec and language_info JupyterLab itself writes for the python3 kernel here, so that a refined
    notebook opens unmodified (Lab replaces metadata that differs from its kernel's, marking the notebook dirty)."""
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        display_name = KernelSpecManager().get_kernel_spec("python3").display_name
    except NoSuchKernel:
        display_name = "Python 3 (ipykernel)"
    return {"kernelspec": {"display_name": display_name, "language": "python", "name": "python3"},
            "language_info": dict(IPythonKernel.language_info)}


def free_path(path) -> tuple[Path, bool]:
    """The path to write to, never an existing notebook: (path, renamed).

    An existing file is kept, whoever wrote it (a user's notebook, or an earlier run's refined one: a
    stopped run must not replace a solved notebook), and the next free name ``stem-1.ipynb``,
    ``stem-2.ipynb``... is used.
    """
    path = Path(path)
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate, candidate != path


def _code_cell(cell: DraftCell, with_outputs: bool):
    meta = {"id": cell.id, "revisions": cell.revisions}
    if cell.edited_by_user:
        meta["edited_by_user"] = True
    code = new_code_cell(cell.source, metadata={"medagent": meta})
    if with_outputs:  # cleaned as the sandbox kernel's relay cleans them: the notebook may be opened anywhere
        code.outputs = [nbformat.from_dict(o) for o in clean_outputs(cell.outputs)]
    return code


def _note(cell: DraftCell) -> str:
    """The markdown above a cell: the agent's note, and what happened to the cell when it was not the usual."""
    marks = []
    if cell.edited_by_user:
        marks.append("*Edited by you before it ran.*")
    elif cell.user_edits:
        marks.append("*You edited an earlier version of this cell before it ran; the agent changed it again since "
                     "(see the plan's \"changed while running\").*")
    if cell.status == "skipped":
        marks.append("**Skipped by you: this cell was not run**, so nothing after it can rely on what it would have "
                     "made. Its code, for reference:\n\n```python\n" + cell.source + "\n```")
    elif cell.status != "ok":
        marks.append(f"*(status: {cell.status})*")
    return "  \n".join([cell.note] + marks)


@dataclass(frozen=True)
class ModelAuthor:
    """The model that wrote a notebook's code, and the folders the guard confines that code to."""

    model: str
    output_dir: str
    data_dir: str | None = None


def model_warning(author: ModelAuthor) -> str:
    return (f"> **Written by a model ({author.model}), not by a person.** Read each cell before you run it. "
            "The first code cell locks this kernel down for the rest of its life: a seccomp filter (enforced by "
            "Linux, not by Python) refuses starting any program and opening internet or raw network sockets, so "
            "`!` commands, `%pip` and downloads fail from then on; Landlock (Linux again) refuses writing files "
            f"anywhere but `{author.output_dir}` and a private temp folder; and medagent's runtime guard lets the "
            "cells below write only "
            f"into `{author.output_dir}` and change nothing in the data, as while the agent ran them. "
            "Restarting the kernel lifts both the lockdown and the guard.")


def guard_cell(author: ModelAuthor):
    protected = [author.data_dir] if author.data_dir else []
    source = ("# A model wrote the cells below: from here on this kernel starts no program, opens no internet\n"
              "# socket (seccomp), writes files only into the output folder (Landlock), and the runtime guard\n"
              "# watches every cell. Restart the kernel to lift them.\n"
              "from jupyter_medagent.isolation.guard import watch_model_code\n"
              "from jupyter_medagent.isolation.lockdown import lock_down\n\n"
              f"print(lock_down([{author.output_dir!r}]))\n"
              f"watch_model_code(writable=[{author.output_dir!r}], protected={protected!r})")
    return new_code_cell(source, metadata={"medagent": {"guard": True}})


def is_guard_cell(cell) -> bool:
    """The cell that arms the guard in a model-written notebook: ours, not one of the agent's steps."""
    return bool(cell.get("metadata", {}).get("medagent", {}).get("guard"))


def refined_notebook(request: str, cells: list[DraftCell], metrics: dict[str, Any], provenance: dict[str, Any],
                     *, summary: str = "", partial: bool = False, plan_markdown: str = "",
                     verified: str = "not yet", author: ModelAuthor | None = None) -> nbformat.NotebookNode:
    """Title, the plan (when the backend made one), then each cell preceded by its note (a skipped cell as a
    note only, its code shown but not runnable), then the results; provenance in metadata. Code a model
    wrote (``author``) is announced at the top and watched by the guard from the first code cell on."""
    nb = new_notebook(metadata=copy.deepcopy(kernel_metadata()))
    intro = f"# {_title(request)}\n\n"
    if author is not None:
        intro += model_warning(author) + "\n\n"
    intro += f"**Request:** {request.strip()}\n\n"
    intro += ("*Draft written while the agent works: every cell so far, including ones that failed.*"
              if partial else "*Written by jupyter_medagent. Each step below says what it does and why; "
              "the notebook re-runs top to bottom on its own.*")
    if not partial and summary:  # the answer first; the Results at the end hold every number and the check
        intro += f"\n\n**In short:** {summary} (Details, and whether a re-run reproduced them: Results, at the end.)"
    nb.cells.append(new_markdown_cell(intro))
    if author is not None:
        nb.cells.append(guard_cell(author))
    if plan_markdown:
        nb.cells.append(new_markdown_cell(plan_markdown))
    for cell in cells:
        nb.cells.append(new_markdown_cell(_note(cell)))
        if cell.status != "skipped":
            nb.cells.append(_code_cell(cell, with_outputs=True))
    if not partial:
        nb.cells.append(new_markdown_cell(results_markdown(metrics, summary, verified),
                                          metadata=copy.deepcopy(RESULTS_MARK)))
    nb.metadata["medagent"] = provenance
    return nb


RESULTS_MARK = {"medagent": {"results": True}}  # the Results cell, rewritten once the re-run's numbers are compared


def replace_results(nb: nbformat.NotebookNode, markdown: str) -> None:
    """Put ``markdown`` into the notebook's Results cell."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.get("metadata", {}).get("medagent", {}).get("results"):
            cell.source = markdown
            return
    nb.cells.append(new_markdown_cell(markdown, metadata=copy.deepcopy(RESULTS_MARK)))


def _title(request: str) -> str:
    first = request.strip().splitlines()[0] if request.strip() else "Analysis"
    return first if len(first) <= 90 else first[:87] + "..."


NOT_VERIFIED = ("**Not verified:** this notebook was not re-run top to bottom after it was written (you chose to "
                "skip that). Run all cells to check that it reproduces these results.")


def results_markdown(metrics: dict[str, Any], summary: str, verified: str = "not yet", reproduction=None) -> str:
    """``reproduction`` (notebook.reproduce.Reproduction): how the re-run's numbers compare with these."""
    from jupyter_medagent.notebook.headline import headline, headline_text
    from jupyter_medagent.pipelines.report import markdown_table

    lines = ["## Results", ""]
    if verified == "skipped":
        lines += [NOT_VERIFIED, ""]
    if reproduction is not None:
        lines += [reproduction.markdown(), ""]
    if reproduction is not None and not reproduction.reproduced:
        lines += ["What the run reported (not reproduced):", ""]
    if summary:
        lines += [summary, ""]
    shown = headline_text(headline(metrics))
    if shown:
        lines += [shown, ""]
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if scalars:
        lines += ["All measures:", "", markdown_table([[measure_label(k), f"{v:.4g}"] for k, v in scalars.items()],
                                                      ["measure", "value"])]
    return "\n".join(lines)


WORDS = {"dice": "Dice", "hd95": "HD95", "ef": "EF", "edv": "EDV", "esv": "ESV", "sv": "SV", "abs": "absolute",
         "lv": "LV", "rv": "RV", "myo": "MYO"}
NAMED = {"dice_mean": "mean Dice", "ef_abs_error": "EF error (points)"}
UNITS = {"mm": "(mm)", "ml": "(mL)", "seconds": "(s)", "s": "(s)", "percent": "(%)", "g": "(g)"}


def measure_label(key: str) -> str:
    """A metric's key as a reader says it: ``hd95_RV_mm`` is "HD95 RV (mm)", ``training_seconds`` "training (s)"."""
    if key in NAMED:
        return NAMED[key]
    parts = key.split("_")
    unit = UNITS.get(parts[-1].lower()) if len(parts) > 1 else None
    words = [WORDS.get(p.lower(), p) for p in (parts[:-1] if unit else parts)]
    return " ".join(words + ([unit] if unit else []))


def write_notebook(nb: nbformat.NotebookNode, path) -> Path:
    """Write atomically, so a crash never leaves half a file; a failed write (disk full, file too large)
    leaves no temporary file behind and raises NotebookWriteError naming the path."""
    from jupyter_medagent.contracts.errors import NotebookWriteError

    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".medagent-", suffix=".ipynb")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            nbformat.write(nb, handle)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; a notebook gets the mode any new file gets
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise NotebookWriteError(f"could not write the notebook {path}: {exc.strerror or exc}") from exc
        raise
    return path


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for a moment, in every thread)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere reading it means setting it; put it straight back
    os.umask(mask)
    return mask


def reexecute_notebook(path, timeout: float | None = 1800, *, kernel_manager=None, cwd=None,
                       scrub=None, on_cell_done=None) -> tuple[bool, str | None]:
    """Run the notebook top to bottom in a fresh kernel (``kernel_manager``: a sandboxed or guarded one,
    not started; ``cwd``: its working directory, default the notebook's folder); keep the fresh outputs,
    passed through ``scrub`` before they are written. ``on_cell_done()`` is called after each of the agent's
    code cells (not after the cell that arms the guard)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", km=kernel_manager,
                            resources={"metadata": {"path": str(cwd or path.parent)}},
                            on_cell_executed=(lambda cell, **_: is_guard_cell(cell) or on_cell_done())
                            if on_cell_done else None)
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
