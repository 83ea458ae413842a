"""What a backend sees of the past: recent steps in full, older ones elided to one marked line each.

Keeps the view bounded however long a run gets (a 40-step training session included), while the
backend still knows every step that happened, in which order, and that it is seeing an elided
copy: each elided line names its cell and the tools (show_cell, read_output, list_cells) that
return the cell's current source and output, so a model never has to guess what it wrote.
"""

from __future__ import annotations

import re

from jupyter_medagent.agent.protocols import Observation, Step

KEEP_VERBATIM = 8  # most recent steps passed whole (text, images, data)
# The latest reply's results are ones the model has not seen yet: all of them stay whole, up to this many.
LATEST_TURN_VERBATIM = 32
SUMMARY_CHARS = 160
CELL_TOOLS = ("add_cell", "edit_cell", "run_cell", "render")  # calls whose result is a cell's run
CELL_LINE = re.compile(r"cell (\w+) (?:ran|FAILED)\b")  # how a cell's result begins (Toolbox._observe)

# Stay whole, without images: the data card every later decision rests on, and the recipe's advice.
PINNED_TOOLS = ("inspect_data", "propose_recipe")


def shorten(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut at a word boundary and marked."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0] if " " in text[:limit - 1] else text[:limit - 1]
    return cut + "…"


def one_line(step: Step) -> str:
    """The elided form of a step's result: its first line, marked, with where the whole of it is now."""
    first = step.observation.text.strip().splitlines()[0] if step.observation.text.strip() else ""
    first = shorten(("ERROR " if step.observation.is_error else "") + first, SUMMARY_CHARS - 60)
    named = CELL_LINE.match(step.observation.text.strip())
    cell = step.observation.data.get("cell_id") or step.call.arguments.get("cell_id") or (named and named.group(1))
    if step.call.name in CELL_TOOLS and cell:
        return f"[elided] {first}; show_cell({cell!r}) / read_output({cell!r}) return its current source and output"
    return f"[elided] {first}"


def compact(step: Step) -> Step:
    if step.call.name in PINNED_TOOLS:
        return Step(step.call, Observation(step.observation.text, is_error=step.observation.is_error), step.turn)
    call = step.call
    if call.name in ("add_cell", "edit_cell") and "source" in call.arguments:
        # The source as it was is stale: show_cell has the current one. Say so, so that the call does not
        # read as one made without a source.
        arguments = {k: v for k, v in call.arguments.items() if k != "source"}
        lines = len(str(call.arguments["source"]).splitlines())
        arguments["source_elided"] = f"{lines} lines; show_cell has it"
        call = type(call)(call.name, arguments, call.id)
    return Step(call, Observation(one_line(step), is_error=step.observation.is_error), step.turn)


def compact_history(history: list[Step], keep: int = KEEP_VERBATIM) -> list[Step]:
    """Older steps shrink to a marked one-line observation without images or data (the data card and the
    recipe stay whole, without images); the last ``keep`` stay whole, and so does every result of the
    latest reply however many calls it made (up to LATEST_TURN_VERBATIM)."""
    latest = history[-1].turn if history else None
    in_latest = 0
    if latest is not None:
        while in_latest < len(history) and history[-1 - in_latest].turn == latest:
            in_latest += 1
    cut = max(0, len(history) - max(keep, min(in_latest, LATEST_TURN_VERBATIM)))
    return [compact(s) for s in history[:cut]] + list(history[cut:])
