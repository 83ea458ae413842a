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


def compact_history(history: list[Step], keep: int = KEEP_VERBATIM) -> list[Step]:
    """Older steps shrink to a one-line observation without images or data; the last ``keep`` stay whole."""
    cut = max(0, len(history) - keep)
    older = [Step(s.call if s.call.name not in ("add_cell", "edit_cell") else
                  type(s.call)(s.call.name, {k: v for k, v in s.call.arguments.items() if k != "source"}, s.call.id),
                  Observation(one_line(s), is_error=s.observation.is_error)) for s in history[:cut]]
    return older + list(history[cut:])
