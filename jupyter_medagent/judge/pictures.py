"""Checks an expert runs on a 2D data set before training, from the data card alone (no voxel is read again):
the same picture in training and test (the public chest X-ray set has them), grayscale mixed with RGB,
masks saved with grey levels or as 0/255, radiographs stored as MONOCHROME1, patient ids in the file names,
class imbalance and a validation split too small to trust. Each finding names the files it is about."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from jupyter_medagent.contracts.findings import Finding

IMBALANCE_RATIO = 2.0  # the largest class at least twice the smallest: weight the classes
VALIDATION_MIN_CASES = 10
VALIDATION_MIN_FRACTION = 0.05  # of the training split
SPLIT_ORDER = {"training": 0, "validation": 1, "testing": 2, None: 3}


def check_pictures(card) -> list[Finding]:
    cases = card.readable
    return (_duplicates(cases) + _channels(cases) + _masks(cases) + _monochrome1(cases) + _patients(cases)
            + _imbalance(card) + _validation(card))


def _name(case) -> str:
    return Path(case.image_path).name


def _duplicates(cases) -> list[Finding]:
    """Identical pixels under two names: across splits a leak that inflates the test score; within one split
    a copy that a random split would put on both sides (kept together by the split)."""
    by_hash = defaultdict(list)
    for case in cases:
        if case.pixel_hash:
            by_hash[case.pixel_hash].append(case)
    findings = []
    for group in by_hash.values():
        if len(group) < 2:
            continue
        group = sorted(group, key=lambda c: (SPLIT_ORDER.get(c.split, 3), c.case_id))
        first = group[0]
        for other in group[1:]:
            across = other.split != first.split
            findings.append(Finding(
                other.case_id, "leakage", "warning",
                f"{_name(other)} ({other.split or 'no split'}) has the same pixels as {_name(first)} "
                f"({first.split or 'no split'})" + (": the same image in two splits inflates the held-out score, so "
                                                   "it is kept out of the held-out set" if across else
                                                   ": a copy, kept on the same side of the split as its original"),
                {"path": other.image_path, "duplicate_of": first.case_id, "across_splits": across}))
    return findings


def _channels(cases) -> list[Finding]:
    counts = Counter(c.channels for c in cases)
    if len(counts) < 2:
        return []
    majority = counts.most_common(1)[0][0]
    words = {1: "grayscale", 3: "RGB"}
    return [Finding(c.case_id, "mixed_channels", "info",
                    f"{_name(c)} is {words.get(c.channels, f'{c.channels}-channel')} among {counts[majority]} "
                    f"{words.get(majority, f'{majority}-channel')} pictures: every picture is brought to "
                    f"{words.get(majority, majority)} before training", {"path": c.image_path, "channels": c.channels})
            for c in cases if c.channels != majority]


def _masks(cases) -> list[Finding]:
    masked = [c for c in cases if c.label_encoding]
    lossy = [c for c in masked if "grey levels" in c.label_encoding]
    if lossy and len(lossy) > len(masked) / 2:
        # The data set's own format (Kvasir-SEG ships JPEG masks): one note, not a warning per file.
        findings = [Finding("dataset", "lossy_mask", "info",
                            f"{len(lossy)} of {len(masked)} masks have grey levels (lossy JPEG, e.g. "
                            f"{Path(lossy[0].label_path).name}): each is thresholded at half its maximum",
                            {"paths": [c.label_path for c in lossy[:20]]})]
    else:
        findings = [Finding(c.case_id, "lossy_mask", "warning",
                            f"mask {Path(c.label_path).name} has {c.label_encoding}: lossy compression (JPEG) "
                            "blurs the mask's edges; the threshold recovers the foreground", {"path": c.label_path})
                    for c in lossy]
    encodings = Counter(c.label_encoding for c in masked if c not in lossy)
    if encodings:
        described = ", ".join(f"{n} stored as {e}" for e, n in encodings.most_common())
        note = "read as 0/1 foreground" if "0/255" in encodings else "used as they are"
        findings.append(Finding("dataset", "mask_encoding", "info", f"masks: {described}; {note}",
                                {"encodings": dict(encodings)}))
    return findings


def _monochrome1(cases) -> list[Finding]:
    return [Finding(c.case_id, "monochrome1", "info", f"{_name(c)} is stored as MONOCHROME1 (low values white): "
                    "inverted on reading, so bone is bright as in the other radiographs", {"path": c.image_path})
            for c in cases if c.photometric and c.photometric.startswith("MONOCHROME1")]


def _patients(cases) -> list[Finding]:
    patients = {c.patient_id for c in cases}
    if len(patients) == len(cases) or not cases:
        return []
    return [Finding("dataset", "patients_from_names", "info",
                    f"{len(cases)} pictures of {len(patients)} patients (patient ids from the file names or the label "
                    "table): every split keeps a patient's pictures together", {"patients": len(patients)})]


def _imbalance(card) -> list[Finding]:
    """Counted where the model learns: in the training split when the data set gives one."""
    training = [c for c in card.readable if c.split == "training"] or card.readable
    counts = Counter(c.group for c in training if c.group)
    if len(counts) < 2:
        return []
    (big, n_big), (small, n_small) = counts.most_common()[0], counts.most_common()[-1]
    if n_big < IMBALANCE_RATIO * n_small:
        return []
    return [Finding("dataset", "class_imbalance", "info",
                    f"{big} has {n_big} training pictures, {small} {n_small} (x{n_big / n_small:.1f}): the loss weights each "
                    "class by the inverse of its frequency and the score is the balanced accuracy",
                    {"counts": dict(counts)})]


def _validation(card) -> list[Finding]:
    splits = Counter(c.split for c in card.readable)
    n_val, n_train = splits.get("validation", 0), splits.get("training", 0)
    if not n_val or not n_train:
        return []
    if n_val >= VALIDATION_MIN_CASES and n_val >= VALIDATION_MIN_FRACTION * n_train:
        return []
    return [Finding("dataset", "small_validation", "info",
                    f"the given validation split holds {n_val} pictures beside {n_train} for training: too few to "
                    "choose a model on, so validation is re-split from the training set by patient (the given "
                    "validation pictures join the training set)", {"validation": n_val, "training": n_train})]
