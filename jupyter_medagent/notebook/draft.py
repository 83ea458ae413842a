"""The agent's working notebook: every cell it wrote, with status and outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DraftCell:
    id: str
    source: str
    note: str
    status: str = "pending"  # pending, ok, error, skipped
    outputs: list[dict[str, Any]] = field(default_factory=list)
    revisions: int = 0  # how many times an edit replaced the code
    duration_s: float = 0.0
    edited_by_user: bool = False  # the current code is the user's: changed at the approval prompt before it ran
    user_edits: int = 0  # how often the user changed it at the approval prompt (kept when the agent rewrites it)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "note": self.note, "status": self.status, "revisions": self.revisions,
                "source": self.source, "edited_by_user": self.edited_by_user}


class DraftNotebook:
    def __init__(self):
        self.cells: list[DraftCell] = []
        self._counter = 0

    def add(self, source: str, note: str) -> DraftCell:
        self._counter += 1
        cell = DraftCell(f"c{self._counter}", source, note)
        self.cells.append(cell)
        return cell

    def get(self, cell_id: str) -> DraftCell | None:
        return next((c for c in self.cells if c.id == cell_id), None)

    def replace(self, cell_id: str, source: str, note: str | None) -> DraftCell:
        """An edit replaces the cell being fixed, so the notebook never piles up copies."""
        cell = self.get(cell_id)
        cell.source = source
        cell.note = note or cell.note
        cell.status = "pending"
        cell.outputs = []
        cell.revisions += 1
        cell.edited_by_user = False  # the agent's code again
        return cell

    def surviving(self) -> list[DraftCell]:
        return [c for c in self.cells if c.status == "ok"]

    def kept_or_skipped(self) -> list[DraftCell]:
        """What the refined notebook shows: the cells that ran, and the ones the user skipped (marked, not run)."""
        return [c for c in self.cells if c.status in ("ok", "skipped")]
