"""The Plan: one serialisable answer to "what will be done with this data on this machine, and why".

``make_plan(card, intent, compute)`` (plan/make.py) takes the data's fingerprint (the data card), the request's intent
and the machine's fingerprint, picks a recipe from the registry and lets it fill in the configuration
and the ordered steps. The same Plan is shown to the user (the Plan event, the notebook's first cell),
stored in the notebook's provenance, executed by the offline backend, and offered to model backends.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from jupyter_medagent.plan.compute import ComputeFingerprint
from jupyter_medagent.plan.training import TrainingConfig, plan_training

TEMPLATES = resources.files(__package__).joinpath("templates")
# Finding kinds the fixes cell repairs or handles; anything else excludes the label.
FIXABLE = {"orientation_flip", "axis_permutation", "label_convention", "spacing_mismatch", "intensity_scale",
           "interpolated_labels", "empty_label", "stray_labels", "geometry_mismatch", "aligned_by_reorientation",
           "leakage", "lossy_mask"}


class PlanFailed(Exception):
    """No plan can be made or carried on; the message says why in plain words."""


@dataclass
class Preferences:
    """What a user may fix in advance (``offline:steps=900,dims=3``); everything left None is derived."""

    steps: int | None = None
    batch_size: int | None = None
    dims: int | None = None  # 2 or 3
    device: str | None = None  # cuda, mps or cpu
    seed: int = 0
    test_fraction: float = 0.3
    dice_bar: float = 0.90
    ef_bar: float = 3.0  # largest mean EF error (points) against reference labels on held-out patients
    accuracy_bar: float = 0.85  # balanced accuracy on held-out patients, for classification
    epochs: int = 30  # classification training epochs
    auroc_bar: float = 0.80  # mean AUROC over the findings on held-out pictures, for multi-label classification


@dataclass
class Step:
    name: str  # unique in the plan: "setup", "train", "judge_predictions", ...
    tool: str  # "cell", "render" or "judge"
    title: str = ""  # a few words for the plan's outline; steps without one are not listed there
    note: str = ""  # a cell's note for the reader; a judge's context; a render's title
    template: str = ""  # cells: "<recipe templates>/<name>" under plan/templates
    args: dict[str, Any] = field(default_factory=dict)  # render: image, label, prediction, label_names


@dataclass
class Plan:
    recipe: str
    reasons: list[str]
    data: dict[str, Any]  # the data fingerprint values the plan was derived from
    compute: ComputeFingerprint
    preferences: Preferences
    anatomy: str | None = None
    structures: dict[int, str] = field(default_factory=dict)
    convention: str | None = None
    measures: list[str] = field(default_factory=list)
    normalisation: str = ""  # "zscore per image" or "CT foreground window"
    training: TrainingConfig | None = None
    quality_bar: dict[str, list] = field(default_factory=dict)  # metric -> [op, threshold]
    steps: list[Step] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)  # template parameters
    fixes: list[dict[str, Any]] = field(default_factory=list)  # findings the fixes cell handles
    adjustments: list[str] = field(default_factory=list)  # what was changed while running, and why

    # ------------------------------------------------------------------ reading
    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def source(self, step: Step | str) -> str:
        """A cell's code: its template with the plan's parameters."""
        step = self.step(step) if isinstance(step, str) else step
        text = TEMPLATES.joinpath(f"{step.template}.py.tmpl").read_text()
        return Template(text).substitute(self.params).rstrip() + "\n"

    def outline(self) -> list[str]:
        """The plan as short steps for a person (the Plan event)."""
        return [s.title for s in self.steps if s.title]

    def settings_table(self) -> list[tuple[str, str]]:
        """What was decided and from what, as rows for the notebook."""
        data = self.data
        spacing = " x ".join(f"{s:.2f}" for s in data.get("median_spacing") or ())
        rows = [("recipe", self.recipe.replace("_", " ")),
                ("data", f"{data.get('n_cases')} cases from {data.get('n_patients')} patients, "
                         f"{data.get('n_labelled')} labelled; modality {data.get('modality') or 'not stated'}; "
                         f"median spacing {spacing} mm (anisotropy {data.get('anisotropy')})"),
                ("machine", self.compute.describe())]
        if self.convention:
            rows.append(("label convention", f"{self.convention.upper()}: "
                         + ", ".join(f"{v} {n}" for v, n in self.structures.items())))
        if self.normalisation:
            rows.append(("intensity normalisation", self.normalisation))
        if self.training:
            t = self.training
            rows += [("network", f"{t.dims}D UNet (MONAI), channels {t.network['channels']}"),
                     ("training", t.describe(self.compute))]
        if self.quality_bar:
            rows.append(("quality bar", ", ".join(f"{k} {op} {v}" for k, (op, v) in self.quality_bar.items())))
        rows += [("why", r) for r in self.reasons]
        rows += [("changed while running", a) for a in self.adjustments]
        return rows

    def markdown(self) -> str:
        lines = ["## How this analysis was planned", "",
                 "Derived from the data card and from the machine the kernel runs on, not from habit.", "",
                 "| | |", "|---|---|"]
        lines += [f"| {k} | {v.replace('|', chr(92) + '|')} |" for k, v in self.settings_table()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["structures"] = {str(k): v for k, v in self.structures.items()}
        data["compute"] = self.compute.to_dict()
        data["steps"] = [{k: v for k, v in asdict(s).items() if v} for s in self.steps]
        data.pop("params")  # template values: visible in the cells themselves
        return data

    def cells(self) -> list[dict[str, str]]:
        """Every step with its note, and its code for cells: what ``propose_recipe`` gives a model backend."""
        return [{"name": s.name, "tool": s.tool, "note": s.note, **({"source": self.source(s)} if s.tool == "cell" else
                                                                    {"arguments": s.args})} for s in self.steps]

    # ------------------------------------------------------------------ changing
    def retrain(self, **changes) -> None:
        """Derive the training set-up again with some values fixed (a repair or a longer run)."""
        t = self.training
        shape = self.data["median_shape"]
        self.training = plan_training(t.dims, shape, self.compute, device=changes.get("device", t.device),
                                      steps=changes.get("steps", t.steps), batch_size=changes.get("batch_size"))
        if "patch" in changes:
            self.training.patch = changes["patch"]
        if self.training.device == t.device:
            self.training.workers = t.workers  # a repair may have taken the workers away
        self.params.update(training_params(self.training))

    def adopt_user_edit(self, step: Step, source: str) -> str | None:
        """The user changed ``step``'s code at the approval prompt and ran it: the plan takes the values the edited
        cell sets (the training length), so later repairs start from them. What changed, or None."""
        if step.name != "train" or not self.training:
            return None
        found = re.search(r"^STEPS\s*=\s*(\d+)\s*(#.*)?$", source, re.M)
        if not found or int(found.group(1)) == self.training.steps:
            return None
        steps = int(found.group(1))
        change = f"training length set to {steps} steps by you (the plan had {self.training.steps})"
        self.retrain(steps=steps, batch_size=self.training.batch_size, patch=self.training.patch)
        self.adjustments.append(change)
        return change

    def shrink_for_memory(self) -> tuple[str, list[str]] | None:
        """After an out-of-memory error: a smaller batch, then a smaller patch, then the CPU.

        Returns (what changed, the steps to run again) or None when nothing is left to shrink.
        """
        t = self.training
        if t.batch_size > 2:
            change = f"batch halved from {t.batch_size} to {t.batch_size // 2}"
            self.retrain(batch_size=t.batch_size // 2, patch=t.patch)
            return change, ["data"]
        stride = math.prod(t.network["strides"])
        if t.dims == 3 and max(t.patch) > 2 * stride:
            patch = [max(2 * stride, p // 2 // stride * stride) for p in t.patch]
            change = f"patch reduced from {t.patch} to {patch}"
            self.retrain(batch_size=t.batch_size, patch=patch)
            return change, ["data"]
        if t.device != "cpu":
            change = f"training moved from the {t.device.upper()} device to the CPU"
            self.retrain(device="cpu")
            self.params["device"] = 'torch.device("cpu")  # the GPU ran out of memory even with the smallest batch'
            self.params["amp"] = "False"
            return change, ["setup", "data"]
        return None


def training_params(training: TrainingConfig) -> dict[str, Any]:
    return {"dims": training.dims, "channels": tuple(training.network["channels"]),
            "strides": tuple(training.network["strides"]), "res_units": training.network["res_units"],
            "patch": tuple(training.patch), "batch_size": training.batch_size, "steps": training.steps,
            "workers": training.workers}


def fix_entries(findings: list[dict]) -> tuple[str, list[dict]]:
    """The fixes cell's list of (case, kind, evidence) as code, and the log of findings handled."""
    entries, handled = [], []
    for f in findings:
        if f["severity"] == "info" or f["kind"] == "unreadable":
            continue  # unreadable files never enter the analysis (load_cases skips them)
        kind = f["kind"] if f["kind"] in FIXABLE else "exclude"
        evidence = {k: v for k, v in f.get("evidence", {}).items() if k in ("flip_axis", "permute", "mapping", "duplicate_of")}
        entries.append((f["case"], kind, evidence))
        handled.append({"case": f["case"], "finding": f["kind"], "message": f["message"]})
    if not entries:
        return "[]", handled
    return "[\n" + "".join(f"    ({c!r}, {k!r}, {e!r}),\n" for c, k, e in entries) + "]", handled


def data_location(data_dir: str, output_dir: str | None) -> str:
    """The setup cell's lines that name the data folder: relative to the notebook when the data lies under the
    notebook's folder (the parent of the run's output folder ``NAME_files/``), so the notebook moves with its
    data; else the absolute path."""
    if output_dir:
        here = Path(output_dir).parent
        data = Path(data_dir)
        if data.is_relative_to(here) and data != here:
            folder = Path(output_dir).name
            return ("# The data folder, relative to this notebook's folder: the kernel's working directory, or its\n"
                    f"# parent when the kernel runs in the notebook's output folder ({folder}/, as medagent's kernels do).\n"
                    f"HERE = Path.cwd().parent if Path.cwd().name == {folder!r} else Path.cwd()\n"
                    f"DATA = HERE / {data.relative_to(here).as_posix()!r}")
    return f"DATA = Path({data_dir!r})"
