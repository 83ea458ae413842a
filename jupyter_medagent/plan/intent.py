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


# What a request may assert about the data that the data card can contradict.
CONVENTION_CLAIMS = {
    "mnms": (r"m&ms", r"mnms", r"m\s*&\s*ms", r"\b1 is the (?:left ventricle|lv)\b", r"\blabel 1 is the (?:left ventricle|lv)\b",
             r"\b3 is the (?:right ventricle|rv)\b"),
    "acdc": (r"\bacdc\b", r"\b3 is the (?:left ventricle|lv)\b", r"\blabel 3 is the (?:left ventricle|lv)\b",
             r"\b1 is the (?:right ventricle|rv)\b"),
}
MODALITY_CLAIMS = {"CT": r"\bct\b", "MR": r"\bmri?\b|magnetic resonance"}
SPACING_CLAIM = re.compile(r"(\d+(?:\.\d+)?)\s*mm\b")
CONVENTION_NAMES = {"acdc": "ACDC (1 RV, 2 myocardium, 3 LV)", "mnms": "M&Ms (1 LV, 2 myocardium, 3 RV)"}


def request_conflicts(request: str, card: dict, convention: str | None) -> list[str]:
    """Plain one-line statements of what the request asserts and the data contradicts (a label convention,
    a modality, a resolution); empty when nothing the request says can be checked or all of it holds.

    ``card`` is a data card's ``to_dict()``; ``convention`` the one the labels show (dataset_convention)."""
    text = request.lower()
    lines = []
    claimed = [name for name, patterns in CONVENTION_CLAIMS.items() if any(re.search(p, text) for p in patterns)]
    if convention and len(claimed) == 1 and claimed[0] != convention:
        lines.append(f"The request says the labels follow {CONVENTION_NAMES[claimed[0]]}; the labels' shapes show "
                     f"{CONVENTION_NAMES[convention]}, so the data's convention is used.")
    modality = (card.get("modality") or "").upper()
    said = [m for m, pattern in MODALITY_CLAIMS.items() if re.search(pattern, text)]
    if modality in MODALITY_CLAIMS and len(said) == 1 and said[0] != modality:
        lines.append(f"The request says {said[0]}; the files say {modality}.")
    spacing = [float(s) for s in card.get("median_spacing") or []][:3]
    stated = SPACING_CLAIM.search(text)
    if spacing and stated and float(stated.group(1)) > 0:
        mm = float(stated.group(1))
        if all(abs(s - mm) / mm > 0.2 for s in spacing):
            lines.append(f"The request says {mm:g} mm voxels; the images' median spacing is "
                         f"{' x '.join(f'{s:.2g}' for s in spacing)} mm.")
    anisotropy = float(card.get("anisotropy") or 1.0)
    if re.search(r"thick[- ]slice", text) and anisotropy < 2.0:
        lines.append(f"The request says thick slices; the voxels are near-isotropic (anisotropy {anisotropy:.1f}).")
    elif re.search(r"\bisotropic\b", text) and anisotropy > 2.0:
        lines.append(f"The request says isotropic voxels; they are {anisotropy:.1f}x longer across slices.")
    return lines
