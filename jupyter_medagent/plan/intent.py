"""What a request asks for: task type, structures, measures, anatomy. The words live in vocabulary.json;
which structures an anatomy has comes from the label-convention table (imaging/conventions.json)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from importlib import resources

from jupyter_medagent.imaging.conventions import SYNONYMS, anatomy_structures

VOCABULARY = json.loads(resources.files(__package__).joinpath("vocabulary.json").read_text())


@dataclass
class Intent:
    task_types: list[str] = field(default_factory=list)  # segmentation, classification, measurement
    structures: list[str] = field(default_factory=list)  # e.g. LV, MYO, RV, object
    measures: list[str] = field(default_factory=list)  # ef, volumes, mass, dice
    anatomy: str | None = None  # e.g. "cardiac"
    from_given_labels: bool = False
    modality: str | None = None  # "MR" or "CT" when the request says which

    @property
    def wants_segmentation(self) -> bool:
        return "segmentation" in self.task_types

    def to_dict(self) -> dict:
        return asdict(self)


def _mentions(text: str, phrases: list[str]) -> bool:
    return any(re.search(r"(?<![a-z])" + re.escape(p.strip()) + r"(?![a-z])", text) for p in phrases)


def parse_request(request: str) -> Intent:
    text = " " + request.lower().replace("\n", " ") + " "
    intent = Intent()
    intent.task_types = [t for t, words in VOCABULARY["task_types"].items() if _mentions(text, words)]
    structures = {**SYNONYMS, **VOCABULARY["structures"]}  # anatomy's own structures, then generic objects
    intent.structures = [s for s, words in structures.items() if _mentions(text, words)]
    intent.measures = [m for m, words in VOCABULARY["measures"].items() if _mentions(text, words)]
    for name, group in VOCABULARY["anatomy_groups"].items():
        own = anatomy_structures(name)
        if _mentions(text, group["words"]) or set(own) & set(intent.structures):
            intent.anatomy = name
            if not intent.structures:  # "the heart" without details: an expert reads its standard structures
                intent.structures = own
    intent.from_given_labels = _mentions(text, VOCABULARY["measurement_only"])
    intent.modality = next((m for m, words in MODALITY_WORDS.items() if _mentions(text, words)), None)
    return intent


MODALITY_WORDS = {"MR": ["mri", "mris", "mr", "magnetic resonance"], "CT": ["ct", "cts", "computed tomography"]}
