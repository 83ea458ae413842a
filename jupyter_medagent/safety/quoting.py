"""Text that comes from the data (file names, DICOM fields, printed outputs, tracebacks) reaches a model as
quoted data inside a fence it cannot close, so an instruction hidden in a file name stays a string."""

from __future__ import annotations

import re

FENCE = "untrusted-data"
# Any spelling a model might read as the fence's tag: case, spaces and a slash in any place.
FENCE_TAG = re.compile(r"<\s*/?\s*untrusted\s*[-_]?\s*data", re.I)


def quote_untrusted(text: str, source: str) -> str:
    # A fence tag inside the text is defused (a zero-width space after "<") so the block cannot be ended from within.
    body = FENCE_TAG.sub(lambda m: "<\u200b" + m.group(0)[1:], text)
    return f'<{FENCE} source="{source}">\n{body}\n</{FENCE}>'


QUOTE_MARKS = re.compile(rf'<{FENCE} source="[^"\n]*">\n?|\n?</{FENCE}>')


def unquote(text: str) -> str:
    """Text for a person: the fences a model needs taken out, what they held kept (a defused tag stays defused)."""
    return QUOTE_MARKS.sub("", text)
