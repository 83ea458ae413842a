"""One line of plain text per event, for the CLI's progress and the magic's timeline."""

from __future__ import annotations

from jupyter_medagent.agent.events import (
    ApprovalRequest, CellExecuted, CellWritten, Event, Finished, Message, Plan, Render, Repair, Usage, Verdict,
)


def describe(event: Event) -> str | None:
    if isinstance(event, Plan):
        return "Plan: " + "; ".join(f"{i}. {s}" for i, s in enumerate(event.steps, 1)) + \
            (f"\n  ({event.rationale})" if event.rationale else "")
    if isinstance(event, Message):
        return event.text
    if isinstance(event, CellWritten):
        return f"[{event.cell_id}] {'rewrote' if event.replaces else 'wrote'}: {event.note}"
    if isinstance(event, CellExecuted):
        if event.error:
            return f"[{event.cell_id}] error after {event.duration_s:.1f} s: {event.error['ename']}: {event.error['evalue'][:200]}"
        return f"[{event.cell_id}] ran in {event.duration_s:.1f} s"
    if isinstance(event, Render):
        return f"[{event.cell_id}] rendered a montage ({len(event.png) // 1024} KB) for the judge"
    if isinstance(event, Verdict):
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
        verified = {True: "re-ran cleanly", False: "did NOT re-run cleanly", None: "not re-run"}[event.reexecuted_ok]
        return f"Finished: {event.status} — {event.reason}. Notebook: {event.notebook} ({verified})"
    return None
