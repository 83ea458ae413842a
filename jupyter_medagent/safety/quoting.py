"""Text that comes from the data (file names, DICOM fields, printed outputs) reaches a model as quoted
data inside a fence it cannot close, so an instruction hidden in a file name stays a string."""

from __future__ import annotations

FENCE = "untrusted-data"


def quote_untrusted(text: str, source: str) -> str:
    # A fence tag inside the text is defused so the quoted block cannot be ended from within.
    body = text.replace(f"<{FENCE}", f"<\u200b{FENCE}").replace(f"</{FENCE}", f"<\u200b/{FENCE}")
    return f'<{FENCE} source="{source}">\n{body}\n</{FENCE}>'
