"""What a request asks for: task type, structures, measures. Vocabulary lives in vocabulary.json."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources

VOCABULARY = json.loads(resources.files(__package__).joinpath("vocabulary.json").read_text())


@dataclass
class Intent:
    task_types: list[str] = field(default_factory=list)  # segmentation, classification, measurement
    structures: list[str] = field(default_factory=list)  # LV, MYO, RV, object
    measures: list[str] = field(default_factory=list)  # ef, volumes, mass, dice
    anatomy: str | None = None  # e.g. "cardiac"
    from_given_labels: bool = False

    @property
    def wants_segmentation(self) -> bool:
        return "segmentation" in self.task_types

    @property
    def cardiac(self) -> bool:
        return self.anatomy == "cardiac" or bool({"LV", "MYO", "RV"} & set(self.structures))


def _mentions(text: str, phrases: list[str]) -> bool:
    return any(re.search(r"(?<![a-z])" + re.escape(p.strip()) + r"(?![a-z])", text) for p in phrases)


def parse_request(request: str) -> Intent:
    text = " " + request.lower().replace("\n", " ") + " "
    intent = Intent()
    intent.task_types = [t for t, words in VOCABULARY["task_types"].items() if _mentions(text, words)]
    intent.structures = [s for s, words in VOCABULARY["structures"].items() if _mentions(text, words)]
    intent.measures = [m for m, words in VOCABULARY["measures"].items() if _mentions(text, words)]
    for name, group in VOCABULARY["anatomy_groups"].items():
        if _mentions(text, group["words"]):
            intent.anatomy = name
            if not intent.structures:  # "the heart" without details: an expert reads the standard structures
                intent.structures = list(group["structures"])
    intent.from_given_labels = _mentions(text, VOCABULARY["measurement_only"])
    return intent
