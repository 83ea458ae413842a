"""The phantom written in the layouts people download, so every layout can be tested without downloading:

- ``nnunet``: imagesTr/``patientNNN_ED_0000.nii.gz`` + labelsTr/ (+ imagesTs/ for unlabelled patients), the
  project's own layout, where pitfalls can be planted;
- ``acdc``: training/ and testing/ ``patientNNN/`` folders with Info.cfg, the 4D cine, the ED/ES frames
  (numbered from 1) and their ``_gt`` labels;
- ``mnms``: ``Training/Labeled/<code>/<code>_sa.nii.gz`` (4D) and ``_sa_gt.nii.gz`` (4D, labelled at ED and ES
  only, M&Ms labels LV=1 MYO=2 RV=3), ED/ES (0-based) in the information CSV at the root;
- ``msd``: a Decathlon task folder, ``heart_NNNED.nii.gz`` / ``heart_NNNES.nii.gz`` (the phase glued to the
  patient), dataset.json naming the labels.

Each writer takes one simulated patient at a time and returns the manifest (the truth) at the end.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from jupyter_medagent.synth.phantom import ACDC_LABELS, MATRIX, SimulatedPatient, simulate_patient
from jupyter_medagent.synth.pitfalls import ACDC_TO_MNMS, parse_pitfall_kinds, plan_pitfalls, plant

CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
CINE_FRAMES = 12  # frames per cine when a layout needs one and none was asked for


def synth_cardiac(out_dir, cases: int = 20, seed: int = 0, pitfalls: str | list[str] = "none", *,
                  layout: str = "nnunet", frames: int = 0, test_cases: int = 0, matrix=(MATRIX, MATRIX)) -> dict:
    """Write ``cases`` labelled patients (plus ``test_cases`` unlabelled ones) under ``out_dir`` in ``layout``
    and return the manifest with the truth.

    ``frames``: 0 writes the ED and ES volumes only; N >= 2 simulates a cine of N frames per patient (ED at
    frame 0, ES at the end of systole), which the ACDC and M&Ms layouts need and default to.
    ``layout``: nnunet (imagesTr/labelsTr, the default), acdc, mnms or msd (the writers below).
    Pitfalls are planted in the nnunet layout only.
    """
    if cases < 1:
        raise ValueError("cases must be at least 1")
    if layout not in WRITERS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(WRITERS)}")
    kinds = parse_pitfall_kinds(pitfalls)
    if kinds and layout != "nnunet":
        raise ValueError("pitfalls are planted in the nnunet layout only")
    if layout in ("acdc", "mnms") and frames < 2:
        frames = CINE_FRAMES
    writer = WRITERS[layout](Path(out_dir), seed, kinds, cases)
    for number in range(1, cases + test_cases + 1):  # one patient at a time: a cine data set never sits in memory
        writer.add(simulate_patient(seed, number, frames, tuple(matrix)), labelled=number <= cases)
    return writer.finish()


class Writer:
    layout = ""

    def __init__(self, out: Path, seed: int, pitfalls: tuple[str, ...], labelled: int):
        self.out, self.seed, self.pitfalls, self.labelled = out, seed, pitfalls, labelled
        out.mkdir(parents=True, exist_ok=True)
        self.manifest = {"dataset": "jupyter_medagent synthetic cardiac cine (short axis)", "layout": self.layout,
                         "seed": seed, "label_convention": "ACDC", "labels": {str(k): v for k, v in ACDC_LABELS.items()},
                         "pitfall_kinds": list(pitfalls), "patients": {}, "cases": []}

    def add(self, patient: SimulatedPatient, labelled: bool) -> None:
        raise NotImplementedError

    def finish(self) -> dict:
        (self.out / "manifest.json").write_text(json.dumps(self.manifest, indent=2))
        return self.manifest

    # ------------------------------------------------------------------ shared
    def record(self, name: str, patient: SimulatedPatient, labelled: bool) -> None:
        self.manifest["patients"][name] = {**patient.truth(), "split": "training" if labelled else "testing"}

    def case(self, case: str, name: str, phase: str, image: str, label: str | None, pitfalls=()) -> None:
        self.manifest["cases"].append({"case": case, "patient": name, "phase": phase, "image": image, "label": label,
                                       "pitfalls": list(pitfalls)})

    def save(self, array: np.ndarray, affine: np.ndarray, relative: str) -> str:
        path = self.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(array, affine), str(path))
        return relative


def cine(patient: SimulatedPatient, labels: bool = False) -> np.ndarray:
    """The patient's frames as one 4D array (x, y, slice, time)."""
    return np.stack([label if labels else image for image, label in patient.frames], axis=-1)


class NnunetWriter(Writer):
    layout = "nnunet"

    def __init__(self, out: Path, seed: int, pitfalls: tuple[str, ...], labelled: int):
        super().__init__(out, seed, pitfalls, labelled)
        case_ids = [f"patient{p:03d}_{phase}" for p in range(1, labelled + 1) for phase in ("ED", "ES")]
        self.planted = plan_pitfalls(case_ids, pitfalls, np.random.default_rng([seed, 7919]))
        (out / "imagesTr").mkdir(exist_ok=True)
        (out / "labelsTr").mkdir(exist_ok=True)

    def add(self, patient: SimulatedPatient, labelled: bool) -> None:
        name = f"patient{patient.number:03d}"
        self.record(name, patient, labelled)
        for phase, frame in (("ED", patient.ed), ("ES", patient.es)):
            image, label = patient.frames[frame]
            case = f"{name}_{phase}"
            if not labelled:
                self.case(case, name, phase, self.save(image, patient.affine, f"imagesTs/{case}_0000.nii.gz"), None)
                continue
            img, lbl, img_aff, lbl_aff = image, label, patient.affine, patient.affine.copy()
            kind = self.planted.get(case)
            pitfalls = []
            if kind:
                rng = np.random.default_rng([self.seed, patient.number, 31])
                img, lbl, img_aff, lbl_aff, target = plant(kind, image, label, patient.affine, rng)
                pitfalls = [{"kind": kind, "file": target}]
            self.case(case, name, phase, self.save(img, img_aff, f"imagesTr/{case}_0000.nii.gz"),
                      self.save(lbl, lbl_aff, f"labelsTr/{case}.nii.gz"), pitfalls)


class AcdcWriter(Writer):
    layout = "acdc"

    def add(self, patient: SimulatedPatient, labelled: bool) -> None:
        name = f"patient{patient.number:03d}"
        self.record(name, patient, labelled)
        folder = f"{'training' if labelled else 'testing'}/{name}"
        truth = patient.truth()
        info = {"ED": patient.ed + 1, "ES": patient.es + 1, "Group": _group(truth["lv_ef_percent"]),
                "Height": truth["height_cm"], "NbFrame": len(patient.frames), "Weight": truth["weight_kg"]}
        if not labelled:
            info.pop("Group")  # ACDC's test patients come without their diagnosis
        (self.out / folder).mkdir(parents=True, exist_ok=True)
        (self.out / folder / "Info.cfg").write_text("".join(f"{k}: {v}\n" for k, v in info.items()))
        self.save(cine(patient), patient.affine, f"{folder}/{name}_4d.nii.gz")
        for phase, frame in (("ED", patient.ed), ("ES", patient.es)):
            image, label = patient.frames[frame]
            stem = f"{folder}/{name}_frame{frame + 1:02d}"
            self.case(f"{name}_{phase}", name, phase, self.save(image, patient.affine, f"{stem}.nii.gz"),
                      self.save(label, patient.affine, f"{stem}_gt.nii.gz") if labelled else None)


class MnmsWriter(Writer):
    layout = "mnms"

    def __init__(self, out: Path, seed: int, pitfalls: tuple[str, ...], labelled: int):
        super().__init__(out, seed, pitfalls, labelled)
        self.manifest["label_convention"] = "M&Ms"
        self.manifest["labels"] = {"1": "LV", "2": "MYO", "3": "RV"}
        self.rows = []

    def add(self, patient: SimulatedPatient, labelled: bool) -> None:
        rng = np.random.default_rng([self.seed, patient.number, 211])
        code = "".join(rng.choice(list(CODE_LETTERS), 6))
        self.record(code, patient, labelled)
        folder = f"{'Training/Labeled' if labelled else 'Testing'}/{code}"
        self.save(cine(patient), patient.affine, f"{folder}/{code}_sa.nii.gz")
        if labelled:
            labels = np.zeros_like(cine(patient, labels=True))
            for frame in (patient.ed, patient.es):  # M&Ms labels ED and ES only
                acdc = patient.frames[frame][1]
                for old, new in ACDC_TO_MNMS.items():
                    labels[..., frame][acdc == old] = new
            self.save(labels, patient.affine, f"{folder}/{code}_sa_gt.nii.gz")
        for phase, frame in (("ED", patient.ed), ("ES", patient.es)):
            self.case(f"{code}_{phase}", code, phase, f"{folder}/{code}_sa.nii.gz#frame={frame}",
                      f"{folder}/{code}_sa_gt.nii.gz#frame={frame}" if labelled else None)
        self.rows.append({"External code": code, "VendorName": "Phantom", "Vendor": "P", "Centre": 1,
                          "ED": patient.ed, "ES": patient.es})

    def finish(self) -> dict:
        with open(self.out / "211230_M&Ms_Dataset_information_diagnosis_opendataset.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, ["", "External code", "VendorName", "Vendor", "Centre", "ED", "ES"])
            writer.writeheader()
            writer.writerows({"": i, **row} for i, row in enumerate(self.rows))
        return super().finish()


class MsdWriter(Writer):
    layout = "msd"

    def __init__(self, out: Path, seed: int, pitfalls: tuple[str, ...], labelled: int):
        super().__init__(out, seed, pitfalls, labelled)
        self.training, self.test = [], []

    def add(self, patient: SimulatedPatient, labelled: bool) -> None:
        name = f"heart_{patient.number:03d}"
        self.record(name, patient, labelled)
        for phase, frame in (("ED", patient.ed), ("ES", patient.es)):
            image, label = patient.frames[frame]
            case = f"{name}{phase}"  # MSD-style names glue the phase to the patient
            if labelled:
                item = {"image": self.save(image, patient.affine, f"imagesTr/{case}.nii.gz"),
                        "label": self.save(label, patient.affine, f"labelsTr/{case}.nii.gz")}
                self.training.append({k: f"./{v}" for k, v in item.items()})
                self.case(case, name, phase, item["image"], item["label"])
            else:
                self.test.append("./" + self.save(image, patient.affine, f"imagesTs/{case}.nii.gz"))
                self.case(case, name, phase, self.test[-1][2:], None)

    def finish(self) -> dict:
        description = {"name": "Heart cine (jupyter_medagent phantom)", "tensorImageSize": "3D", "modality": {"0": "MRI"},
                       "labels": {"0": "background", "1": "right ventricle", "2": "myocardium", "3": "left ventricle"},
                       "numTraining": len(self.training), "numTest": len(self.test), "training": self.training,
                       "test": self.test}
        (self.out / "dataset.json").write_text(json.dumps(description, indent=2))
        return super().finish()


def _group(ef: float) -> str:
    """An ACDC-like diagnosis group from the ejection fraction (DCM below 40%, NOR otherwise)."""
    return "DCM" if ef < 40 else "NOR"


WRITERS = {"nnunet": NnunetWriter, "acdc": AcdcWriter, "mnms": MnmsWriter, "msd": MsdWriter}
