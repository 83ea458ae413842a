"""Label conventions of public data sets, as data (conventions.json): which value means which structure.

A silent swap between conventions (ACDC's LV is M&Ms' RV) is one of the commonest errors in cardiac
work, so every part of the project reads the same table: the judge, the planner and the data card.
"""

from __future__ import annotations

import json
from importlib import resources

_TABLE = json.loads(resources.files(__package__).joinpath("conventions.json").read_text())

# convention -> {structure: label value}, e.g. CONVENTIONS["acdc"]["LV"] == 3
CONVENTIONS: dict[str, dict[str, int]] = {
    key: dict(entry["values"]) for group in _TABLE.values() for key, entry in group["conventions"].items()
}
# convention -> anatomy it belongs to, e.g. "acdc" -> "cardiac"
ANATOMY: dict[str, str] = {key: anatomy for anatomy, group in _TABLE.items() for key in group["conventions"]}
DISPLAY_NAME: dict[str, str] = {key: entry["name"] for group in _TABLE.values() for key, entry in group["conventions"].items()}
STRUCTURE_NAMES: dict[str, str] = {short: long for group in _TABLE.values() for short, long in group["structures"].items()}
# structure -> the words people and data sets use for it ("left ventricle", "LV cavity", ...)
SYNONYMS: dict[str, list[str]] = {short: words for group in _TABLE.values() for short, words in group["synonyms"].items()}


def structures_of(convention: str) -> dict[int, str]:
    """{label value: structure} in value order, e.g. {1: "RV", 2: "MYO", 3: "LV"} for ACDC."""
    return {value: name for name, value in sorted(CONVENTIONS[convention].items(), key=lambda kv: kv[1])}


def anatomy_structures(anatomy: str) -> list[str]:
    """The structures a request about ``anatomy`` means when it names none (e.g. the heart: LV, MYO, RV)."""
    return list(_TABLE[anatomy]["structures"]) if anatomy in _TABLE else []


def structure_named(name: str) -> str | None:
    """The structure a label name means ("Left ventricle" -> "LV"), or None."""
    text = name.strip().lower().replace("_", " ")
    return next((short for short, words in SYNONYMS.items() if text == short.lower() or text in words), None)


def convention_from_names(label_names: dict[int, str]) -> str | None:
    """The convention whose values match the structures a data set's own label names mean (dataset.json, SEG)."""
    meaning = {value: structure_named(name) for value, name in label_names.items() if int(value) != 0}
    for key, values in CONVENTIONS.items():
        if meaning and all(meaning.get(v) == name for name, v in values.items()):
            return key
    return None
