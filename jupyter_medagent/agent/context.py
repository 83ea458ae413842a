"""What a backend sees of the past: recent steps in full, older ones as one line each.

Keeps the view bounded however long a run gets (a 40-step training session included),
while the backend still knows every step that happened and in which order.
"""

from __future__ import annotations

from jupyter_medagent.agent.protocols import Observation, Step

KEEP_VERBATIM = 8  # most recent steps passed whole (text, images, data)
SUMMARY_CHARS = 160


def one_line(step: Step) -> str:
    first = step.observation.text.strip().splitlines()[0] if step.observation.text.strip() else ""
    args = ", ".join(f"{k}={str(v)[:40]!r}" for k, v in step.call.arguments.items() if k not in ("source", "note"))
    line = f"{step.call.name}({args}) -> {'ERROR ' if step.observation.is_error else ''}{first}"
    return line[:SUMMARY_CHARS]


PINNED_TOOLS = ("inspect_data",)  # the data card stays whole: every later decision rests on it


def compact(step: Step) -> Step:
    if step.call.name in PINNED_TOOLS:
        return Step(step.call, Observation(step.observation.text, is_error=step.observation.is_error))
    call = step.call
    if call.name in ("add_cell", "edit_cell"):
        call = type(call)(call.name, {k: v for k, v in call.arguments.items() if k != "source"}, call.id)
    return Step(call, Observation(one_line(step), is_error=step.observation.is_error))


def compact_history(history: list[Step], keep: int = KEEP_VERBATIM) -> list[Step]:
    """Older steps shrink to a one-line observation without images or data (the data card stays whole,
    without images); the last ``keep`` stay whole."""
    cut = max(0, len(history) - keep)
    return [compact(s) for s in history[:cut]] + list(history[cut:])
