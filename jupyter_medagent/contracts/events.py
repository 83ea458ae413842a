"""Typed events the agent loop yields. Every user interface only renders these.

Events are plain dataclasses so they serialise to JSON (``event.to_json()``)
for the server extension's event stream and the CLI's ``--json`` output.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class Event:
    """Base class; ``kind`` names the event in JSON."""

    kind: str = field(init=False, default="event")

    def to_json(self) -> dict[str, Any]:
        data = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bytes):  # PNG bytes travel as base64
                value = base64.b64encode(value).decode("ascii")
            data[f.name] = value
        return data


@dataclass
class Plan(Event):
    """What the agent intends to do, as short human-readable steps."""

    steps: list[str]
    rationale: str = ""
    kind: str = field(init=False, default="plan")


@dataclass
class Message(Event):
    """Narration from the agent (text a model streamed, or a planner's note)."""

    text: str
    kind: str = field(init=False, default="message")


@dataclass
class MessageDelta(Event):
    """A piece of narration while a model is still streaming its reply (a Message with the whole text follows)."""

    text: str
    kind: str = field(init=False, default="message_delta")


@dataclass
class CellWritten(Event):
    """A cell was added, or an existing one replaced (``replaces`` is its id)."""

    cell_id: str
    source: str
    note: str
    replaces: str | None = None
    by_user: bool = False  # the user edited the code at the approval prompt
    kind: str = field(init=False, default="cell_written")


@dataclass
class CellSkipped(Event):
    """The user chose not to run this cell (approve mode); it stays in the notebook, marked, and never ran."""

    cell_id: str
    kind: str = field(init=False, default="cell_skipped")


@dataclass
class CellExecuted(Event):
    """A cell ran. ``outputs`` are nbformat output dicts; ``error`` is None on success."""

    cell_id: str
    outputs: list[dict[str, Any]]
    error: dict[str, Any] | None  # {"ename", "evalue", "traceback": [str]} without ANSI codes
    duration_s: float
    kind: str = field(init=False, default="cell_executed")


@dataclass
class CellOutput(Event):
    """A running cell's outputs so far (sent a few times a second while it runs; CellExecuted has the final ones)."""

    cell_id: str
    outputs: list[dict[str, Any]]
    elapsed_s: float
    kind: str = field(init=False, default="cell_output")


@dataclass
class Progress(Event):
    """How far a long piece of work is: a training loop (``what`` = "training", from the cell's progress
    report) or the verification re-run ("verification", cells done of all)."""

    what: str
    done: int
    total: int
    elapsed_s: float
    eta_s: float | None = None
    text: str = ""  # one line, tqdm-style
    cell_id: str | None = None
    kind: str = field(init=False, default="progress")


@dataclass
class Repair(Event):
    """An error or a finding is being fixed; ``rule`` names the repair rule that fired."""

    cell_id: str | None
    rule: str
    reason: str
    kind: str = field(init=False, default="repair")


@dataclass
class Render(Event):
    """A rendered montage (PNG) produced by a cell, ready to be judged."""

    cell_id: str
    png: bytes
    caption: str = ""
    kind: str = field(init=False, default="render")


@dataclass
class Verdict(Event):
    """A judge's verdict on the current state: the latest findings report of each scope and the images rendered
    since the last verdict. ``findings`` use the quantitative judge's kind names. ``not_checked``: the judge had
    no evidence (no cell has reported findings and none rendered an image since the last verdict, e.g. the user
    skipped the checking cell), so it says nothing about the data."""

    judge: str  # "quantitative", "vlm", "merged", or "panel" when nothing could be checked
    verdict: Literal["ok", "flag", "not_checked"]
    findings: list[dict[str, Any]]
    cell_id: str | None = None
    confidence: float | None = None
    reason: str = ""
    kind: str = field(init=False, default="verdict")


@dataclass
class Usage(Event):
    """Tokens and money for one model call, plus the running totals."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    total_tokens: int = 0
    total_cost_usd: float = 0.0
    kind: str = field(init=False, default="usage")


@dataclass
class ApprovalRequest(Event):
    """Approve-each-cell mode: the loop waits for the approver's decision on this cell."""

    cell_id: str
    source: str
    concerns: list[str] = field(default_factory=list)  # what the safety gate would refuse, for the user to weigh
    kind: str = field(init=False, default="approval_request")


@dataclass
class Results(Event):
    """What the run found, shown before the verification re-run (which takes about as long as the run)."""

    summary: str
    headline: list[dict[str, Any]]  # see notebook/headline.py
    metrics: dict[str, Any] = field(default_factory=dict)
    kind: str = field(init=False, default="results")


@dataclass
class Finished(Event):
    """The run ended. ``status``: solved, failed or stopped; ``reason`` says why in plain words.
    ``verified``: "yes" (re-ran and reproduced the reported numbers), "no" (did not re-run), "not reproduced"
    (re-ran to other numbers), "skipped" (the user chose not to re-run) or "not run" (nothing to verify)."""

    status: Literal["solved", "failed", "stopped"]
    reason: str
    summary: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    notebook: str | None = None
    reexecuted_ok: bool | None = None
    headline: list[dict[str, Any]] = field(default_factory=list)  # the numbers the user asked for (notebook/headline.py)
    verified: str = "not run"
    kind: str = field(init=False, default="finished")
