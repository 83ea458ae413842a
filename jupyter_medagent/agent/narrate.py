"""One line of plain text per event (a few for results), for the CLI, the chat persona and plain-text front ends."""

from __future__ import annotations

from jupyter_medagent.contracts.events import (
    ApprovalRequest, CellExecuted, CellSkipped, CellWritten, Event, Finished, Message, Plan, Progress, Render, Repair,
    Results, Usage, Verdict,
)
from jupyter_medagent.notebook.headline import headline_text

VERIFIED = {"yes": "re-ran and reproduced its numbers", "no": "did NOT re-run cleanly",
            "not reproduced": "re-ran but did NOT reproduce its numbers", "skipped": "NOT verified: re-run skipped",
            "not run": "not re-run", "not yet": "not re-run yet"}


def describe(event: Event) -> str | None:
    if isinstance(event, Plan):
        return "Plan: " + "; ".join(f"{i}. {s}" for i, s in enumerate(event.steps, 1)) + \
            (f"\n  ({event.rationale})" if event.rationale else "")
    if isinstance(event, Message):
        return event.text
    if isinstance(event, CellWritten):
        if event.by_user:
            return f"[{event.cell_id}] edited by you before it ran"
        return f"[{event.cell_id}] {'rewrote' if event.replaces else 'wrote'}: {event.note}"
    if isinstance(event, CellSkipped):
        return f"[{event.cell_id}] skipped by you: not run"
    if isinstance(event, Progress):
        return event.text or f"{event.what}: {event.done}/{event.total}"
    if isinstance(event, Results):
        return "\n\n".join(p for p in ("Results: " + event.summary if event.summary else "Results:",
                                         headline_text(event.headline)) if p)
    if isinstance(event, CellExecuted):
        if event.error:
            return f"[{event.cell_id}] error after {event.duration_s:.1f} s: {event.error['ename']}: {event.error['evalue'][:200]}"
        return f"[{event.cell_id}] ran in {event.duration_s:.1f} s"
    if isinstance(event, Render):
        return f"[{event.cell_id}] rendered a montage ({len(event.png) // 1024} KB) for the judge"
    if isinstance(event, Verdict):
        if event.verdict == "not_checked":
            return f"Judge: not checked — {event.reason}"
        kinds = sorted({f.get("kind", "?") for f in event.findings})
        return f"Judge ({event.judge}): {event.verdict}" + (f" — {len(event.findings)} finding(s): {', '.join(kinds)}" if kinds else "")
    if isinstance(event, Repair):
        return f"Repair ({event.rule}): {event.reason}"
    if isinstance(event, Usage):
        return f"Usage: {event.total_tokens} tokens, ${event.total_cost_usd:.4f} so far"
    if isinstance(event, ApprovalRequest):
        concerns = f" (safety gate: this cell {'; '.join(event.concerns)})" if event.concerns else ""
        return f"[{event.cell_id}] waiting for approval{concerns}"
    if isinstance(event, Finished):
        verified = VERIFIED.get(event.verified, event.verified)
        return f"Finished: {event.status} — {event.reason.rstrip('.')}. Notebook: {event.notebook} ({verified})"
    return None
