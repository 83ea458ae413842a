"""What a run leaves on disk: its notebook, rewritten as cells run, refined at the end, stamped with its
provenance last; and its output folder, removed again when the run put nothing there."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any
from collections.abc import Callable

import nbformat

from jupyter_medagent.contracts.protocols import Backend
from jupyter_medagent.contracts.errors import NotebookWriteError
from jupyter_medagent.notebook.draft import DraftNotebook
from jupyter_medagent.notebook.refine import ModelAuthor, free_path, refined_notebook, write_notebook


class NotebookRecorder:
    def __init__(self, request: str, draft: DraftNotebook, backend: Backend, requested: Path,
                 output_dir: str, data_dir: str | None, scrub: Callable[[Any], Any], owns_output_dir: bool = False):
        """``requested``: where the notebook goes (a free name beside it when a file is already there);
        ``scrub`` cleans every notebook before it is written; ``owns_output_dir``: the run made
        ``output_dir``, so an empty one is removed at the end."""
        self.request, self.draft, self.backend, self.scrub = request, draft, backend, scrub
        self.path, self.renamed = free_path(requested)
        self.output_dir, self.data_dir, self.owns_output_dir = Path(output_dir), data_dir, owns_output_dir
        self.author = None if not backend.model_written else ModelAuthor(
            f"{backend.name}: {backend.model}" if backend.model else backend.name, os.path.abspath(output_dir),
            os.path.abspath(data_dir) if data_dir else None)  # the offline planner's cells are our own code

    def plan_markdown(self) -> str:
        """The backend's plan as the reader sees it (backends that plan ahead, like the offline planner)."""
        return self.backend.plan.markdown() if self.backend.plan else ""

    def provenance(self, status: str, reason: str, reexecuted_ok: bool | None, verified: str, reproduction, *,
                   steps: int, tool_calls: int, tokens: int, cost_usd: float, seconds: float, cell_errors: int,
                   verdicts: list, judge_disagreements: list) -> dict[str, Any]:
        """What the notebook's metadata says about the run that wrote it (``steps``: the model's turns)."""
        backend, cells, plan = self.backend, self.draft.cells, self.backend.plan
        return {
            "backend": backend.name,
            "model": backend.model,
            "status": status,
            "reason": reason,
            "steps": steps,
            "tool_calls": tool_calls,
            "tokens": tokens,
            "cost_usd": round(cost_usd, 6),
            "seconds": round(seconds, 1),
            "cells_written": len(cells),
            "cells_kept": len(self.draft.surviving()),
            "cells_skipped_by_user": [c.id for c in cells if c.status == "skipped"],
            "cells_edited_by_user": [c.id for c in cells if c.user_edits],
            "cell_errors": cell_errors,
            "plan": plan.to_dict() if plan else None,
            "repairs": list(backend.repairs),
            "findings_fixed": list(backend.fixes),
            "verdicts": verdicts,
            "judge_disagreements": judge_disagreements,
            "data_dir": self.data_dir,
            "reexecuted_ok": reexecuted_ok,
            "verified": verified,
            "reproduction": reproduction.to_dict() if reproduction else None,
        }

    def write(self, nb) -> None:
        write_notebook(self.scrub(nb), self.path)

    def save_draft(self, metrics: dict[str, Any], provenance: dict[str, Any]) -> None:
        """Every cell so far, as a partial notebook (after each cell, and for a stopped run)."""
        self.write(refined_notebook(self.request, self.draft.cells, metrics, provenance, partial=True,
                                    plan_markdown=self.plan_markdown(), author=self.author))

    def save_refined(self, metrics: dict[str, Any], provenance: dict[str, Any], summary: str, verified: str) -> None:
        """The kept (and the user's skipped) cells as the finished notebook."""
        self.write(refined_notebook(self.request, self.draft.kept_or_skipped(), metrics, provenance, summary=summary,
                                    plan_markdown=self.plan_markdown(), verified=verified, author=self.author))

    def stamp(self, provenance: dict[str, Any]) -> None:
        """Final provenance into the notebook's metadata (after the re-run, which rewrote the file)."""
        if self.path.exists():
            nb = nbformat.read(self.path, as_version=4)
            nb.metadata["medagent"] = provenance
            self.write(nb)

    def mark_unwritable(self, provenance: dict[str, Any]) -> None:
        """The disk is full (or the file too large): what is on disk becomes the smallest notebook that says
        why, the cells without their outputs."""
        nb = refined_notebook(self.request, [replace(c, outputs=[]) for c in self.draft.cells], {}, provenance,
                              partial=True, author=self.author)
        try:
            self.write(nb)
        except NotebookWriteError:
            try:  # in place: the old file's blocks are freed first
                with open(self.path, "w", encoding="utf-8") as handle:
                    nbformat.write(self.scrub(nb), handle)
            except OSError:
                pass

    def drop_unused_output_folder(self) -> None:
        """A run that ended before anything was written there (bad data, a refused request) leaves no empty
        ``*_files/`` folder beside the notebook."""
        try:
            if self.owns_output_dir and self.output_dir.is_dir() and not any(self.output_dir.iterdir()):
                self.output_dir.rmdir()
        except OSError:  # in use or not ours to remove: it stays
            pass
