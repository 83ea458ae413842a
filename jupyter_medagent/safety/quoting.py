"""Text that comes from the data (file names, DICOM fields, printed outputs, tracebacks) reaches a model as
quoted data inside a fence it cannot close, so an instruction hidden in a file name stays a string."""

from __future__ import annotations

import re
import unicodedata

FENCE = "untrusted-data"
# Any spelling a model might read as the fence's tag, once look-alike characters are folded (see
# ``_folded``): case, spaces, a slash, dashes, dots or nothing between the words.
FENCE_TAG = re.compile(r"(?:<|&(?:lt|#0*60|#x0*3c);)[\W_]*untrusted[\W_]*data", re.I)
REMOVED = "[fence tag removed]"

# Look-alikes NFKC leaves alone: dashes and minus signs, slashes, angle brackets, and the Cyrillic
# and Greek letters that read as the Latin ones of the tag.
_LOOK_ALIKES = str.maketrans({
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\u02d7\u2e3a\u2e3b", "-"),
    **dict.fromkeys("\u2044\u2215\u29f8\u2571\u27cb", "/"),
    **dict.fromkeys("\u2039\u2329\u27e8\u3008\u276e\u276c\u29fc\u02c2", "<"),
    "\u0430": "a", "\u0435": "e", "\u0455": "s", "\u0501": "d", "\u0442": "t", "\u043f": "n", "\u0443": "u",
    "\u03b1": "a", "\u03b5": "e", "\u03c4": "t", "\u03c5": "u", "\u03bd": "n", "\u0440": "r", "\u0433": "r",
    "\u0410": "A", "\u0415": "E", "\u0405": "S", "\u0422": "T", "\u0421": "C", "\u0391": "A", "\u0395": "E",
    "\u03a4": "T", "\u039d": "N",
})


def _folded(text: str) -> tuple[str, list[int]]:
    """The text as the fence tag is looked for in it: each character NFKC-normalised, look-alikes mapped,
    format characters (zero-width spaces and joiners, soft hyphens, bidi marks) and combining marks
    dropped; with, for each folded character, the index of the character it came from."""
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char).translate(_LOOK_ALIKES):
            if unicodedata.category(piece) in ("Cf", "Mn", "Me"):
                continue
            folded.append(piece)
            origin.append(index)
    return "".join(folded), origin


def defuse(text: str) -> str:
    """``text`` with every spelling of the fence tag replaced by a plain note."""
    folded, origin = _folded(text)
    spans = [(origin[m.start()], origin[m.end() - 1] + 1) for m in FENCE_TAG.finditer(folded)]
    for start, end in reversed(spans):
        text = text[:start] + REMOVED + text[end:]
    return text


def quote_untrusted(text: str, source: str) -> str:
    return f'<{FENCE} source="{source}">\n{defuse(text)}\n</{FENCE}>'
