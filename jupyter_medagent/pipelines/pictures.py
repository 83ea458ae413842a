"""2D pictures in a generated notebook: splits that keep a data set's own test split and its patients, and
each picture as a channel-first array with the channels the network takes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jupyter_medagent.imaging.volume import Volume
from jupyter_medagent.pipelines.cases import Case, patient_split

LUMINANCE = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as Pillow's RGB -> L


@dataclass
class PictureSplit:
    train: list[Case]
    validation: list[Case]
    test: list[Case]
    notes: list[str] = field(default_factory=list)  # what was decided, in words, for the notebook


def split_pictures(cases: dict[str, Case], *, test_fraction: float, validation_fraction: float, seed: int,
                   resplit_validation: bool) -> PictureSplit:
    """Training, validation and held-out pictures, by patient.

    A data set's own test split is kept as given, less any picture whose patient (or identical twin) is in
    training; without one, patients are split. A given validation split is used unless it is too small to
    trust (``resplit_validation``): then validation patients are drawn from the training ones.

    Args:
        cases: the cases by name (``load_cases``), each with ``split`` ("training", "validation", "testing" or
            None), ``patient`` and ``duplicate_of`` (the name of an identical picture, or None).
        test_fraction: the share of patients held out when the data set has no test split of its own.
        validation_fraction: the share of training patients drawn for validation when none is given (or the given
            one is too small to trust).
        seed: the seed of the patient draws.
        resplit_validation: True to draw validation patients from training even where a validation split is given.

    Returns:
        PictureSplit with ``train``, ``validation`` and ``test`` lists of cases and ``notes`` (what was decided,
        in words, for the notebook).
    """
    notes = []
    for case in cases.values():  # an identical copy follows its original, so it never sits on the other side
        if case.duplicate_of in cases:
            case.patient = cases[case.duplicate_of].patient
    pool = list(cases.values())
    if any(c.split == "testing" for c in pool):
        development = [c for c in pool if c.split != "testing"]
        seen = {c.patient for c in development}
        test = [c for c in pool if c.split == "testing" and c.patient not in seen]
        dropped = sum(c.split == "testing" for c in pool) - len(test)
        notes.append(f"the data set's own test split is kept ({len(test)} pictures)"
                     + (f"; {dropped} of its pictures are left out because the same patient or picture is in "
                        "training" if dropped else ""))
    else:
        train_patients, test_patients = patient_split(sorted({c.patient for c in pool}), test_fraction, seed)
        development = [c for c in pool if c.patient in set(train_patients)]
        test = [c for c in pool if c.patient in set(test_patients)]
        notes.append(f"{len(test_patients)} patients ({len(test)} pictures) held out")
    given = [c for c in development if c.split == "validation"]
    if given and not resplit_validation:
        validation = given
        train = [c for c in development if c.split != "validation" and c.patient not in {v.patient for v in given}]
        notes.append(f"the given validation split is used ({len(validation)} pictures)")
    else:
        patients = sorted({c.patient for c in development})
        train_patients, validation_patients = patient_split(patients, validation_fraction, seed + 1)
        train = [c for c in development if c.patient in set(train_patients)]
        validation = [c for c in development if c.patient in set(validation_patients)]
        notes.append(f"validation: {len(validation_patients)} patients drawn from training"
                     + (f" (the given validation split of {len(given)} pictures is too small to trust and joins "
                        "the pool)" if given else ""))
    return PictureSplit(train, validation, test, notes)


def picture_array(image: Volume, channels: int) -> np.ndarray:
    """A picture (x, y, 1[, colour]) as float32 (channels, x, y): RGB to grey by luminance where the network takes
    one channel, grey repeated where it takes three.

    Args:
        image: a picture's Volume (``case.image``), shaped (x, y, 1) or (x, y, 1, colour).
        channels: the channels the network takes (1 or 3).

    Returns:
        float32 array of shape (channels, x, y).
    """
    array = np.asarray(image.array, dtype=np.float32)[:, :, 0]
    array = array[np.newaxis] if array.ndim == 2 else np.moveaxis(array[..., :3], -1, 0)
    return MatchChannels(channels)(array)


class MatchChannels:
    """A channel-first array (C, ...) with ``channels`` channels: RGB to grey by luminance, grey repeated to RGB
    (a data set that mixes grayscale and RGB pictures goes to the network in one form)."""

    def __init__(self, channels: int):
        self.channels = channels

    def __call__(self, array: np.ndarray) -> np.ndarray:
        array = np.asarray(array, dtype=np.float32)
        if array.shape[0] == self.channels:
            return array
        if self.channels == 1:
            return np.tensordot(LUMINANCE, array[:3], axes=1)[np.newaxis]
        return np.repeat(array[:1], self.channels, axis=0)
