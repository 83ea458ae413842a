"""Classification recipes: one class per sub-folder (or per row of a label table). Volumes: a small 3D CNN with
global max pooling (a small finding anywhere can decide the class). Pictures: a 2D DenseNet. Both are judged by
balanced accuracy on held-out patients."""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_medagent.plan.compute import ComputeFingerprint
from jupyter_medagent.plan.intent import Intent
from jupyter_medagent.plan.plan import Plan, PlanFailed, Preferences, Step
from jupyter_medagent.plan.recipes.base import Recipe, register

MAX_SIDE = 64  # volumes are resized to at most 64 voxels a side: enough for a lesion, cheap on a CPU
MAX_SIDE_2D_GPU = 224  # pictures: the input size of ImageNet-era CNNs on a GPU
MAX_SIDE_2D_CPU = 128  # and what a CPU trains in minutes
BATCH = 16


def _classification_asked(intent: Intent, card: dict) -> bool:
    """Asked for, or ("which of these are abnormal?") the only task class folders without label maps support."""
    asked = "classification" in intent.task_types and not intent.wants_segmentation
    implied = not intent.task_types and len(card.get("classes") or []) >= 2 and not card.get("n_labelled")
    return asked or implied


@register
class Classification2D(Recipe):
    """Pictures (radiographs, photographs) in class folders or with a class table: a 2D DenseNet from MONAI on
    pictures resized with their aspect kept and padded square, classes weighted by frequency, the model of the
    best validation epoch kept, scored by balanced accuracy, recall per class, AUROC and a confusion matrix."""

    name = "classification_2d"
    templates = "classification_2d"

    def applies(self, intent: Intent, card: dict, compute: ComputeFingerprint, convention: str | None,
                preferences: Preferences) -> str | None:
        if card.get("dims") != 2 or not card.get("classes") or not _classification_asked(intent, card):
            return None
        network = "DenseNet121" if compute.has_gpu else "a small DenseNet"
        layout = card.get("layout", "")
        source = "the label table" if "table" in layout else "the archive's labels" if "MedMNIST" in layout else \
            "the sub-folders"
        return (f"2D pictures with classes from {source}"
                f" ({', '.join(card['classes'])}): {network} (MONAI) on whole pictures")

    def build(self, plan: Plan, card: dict, intent: Intent, convention: str | None) -> None:
        prefs = plan.preferences
        classes = list(card["classes"])
        plan.structures = dict(enumerate(classes))
        plan.quality_bar = {"balanced_accuracy": [">=", prefs.accuracy_bar]}
        size, channels = self.picture_params(plan, card, out_channels="len(CLASSES)")
        plan.params.update(classes=repr(classes))
        plan.steps = self.data_steps(plan) + [
            self.cell("split", "Split by patient, keeping the data set's own test split", "Training, validation and "
                      "held-out pictures by patient: the data set's own test split is kept as given, less any picture "
                      "whose patient or identical copy is in training; a validation split too small to trust is drawn "
                      "again from the training patients."),
            Step("render_scan", "render", note="a held-out picture, as stored",
                 args={"image": "test_cases[0].image", "title": "a held-out picture, as stored"}),
            self.cell("train", f"Train a 2D DenseNet ({prefs.epochs} epochs)", f"Train a 2D DenseNet (MONAI) on "
                      f"{size} x {size} pictures ({'RGB' if channels == 3 else 'grayscale'}) for {prefs.epochs} epochs, "
                      "classes weighted by the inverse of their frequency, with small random rotations, zooms and "
                      "shifts; the epoch with the best validation balanced accuracy is kept."),
            self.cell("evaluate", "Evaluate on held-out pictures", "Classify the held-out pictures: balanced "
                      "accuracy, recall per class, AUROC and the confusion matrix."),
        ]

    def picture_params(self, plan: Plan, card: dict, *, out_channels: str) -> tuple[int, int]:
        """Input size, channels, network and validation for pictures, into ``plan.params``; (size, channels)."""
        from jupyter_medagent.judge.pictures import VALIDATION_MIN_CASES, VALIDATION_MIN_FRACTION

        prefs = plan.preferences
        gpu = plan.compute.has_gpu
        sides = [max(c["shape"][:2]) for c in card["cases"] if c.get("shape")]
        size = int(min(MAX_SIDE_2D_GPU if gpu else MAX_SIDE_2D_CPU, np.median(sides)))
        channels_seen = {int(k): v for k, v in (card.get("channels") or {"1": 1}).items()}
        channels = max(channels_seen, key=lambda k: (channels_seen[k], k))
        splits = card.get("splits") or {}
        n_val, n_train = splits.get("validation", 0), splits.get("training", 0)
        resplit = bool(n_val) and (n_val < VALIDATION_MIN_CASES or n_val < VALIDATION_MIN_FRACTION * n_train)
        network = (f"DenseNet121(spatial_dims=2, in_channels=CHANNELS, out_channels={out_channels})" if gpu else
                   f"DenseNet(spatial_dims=2, in_channels=CHANNELS, out_channels={out_channels}, init_features=16, "
                   "growth_rate=8, block_config=(2, 3, 4))  # DenseNet121's design, small enough for a CPU")
        plan.normalisation = "z-score per picture and channel, then resized with its aspect kept and padded square"
        plan.params.update(epochs=prefs.epochs, batch_size=BATCH, size=size, channels=channels,
                           channels_note="grayscale" if channels == 1 else "RGB" + (
                               "; the grayscale pictures among them are repeated to three channels"
                               if len(channels_seen) > 1 else ""),
                           network_class="DenseNet121" if gpu else "DenseNet", network=network,
                           resplit_validation=resplit, convention_arg="", structures=repr(plan.structures))
        if channels == 1 and len(channels_seen) > 1:
            plan.params["channels_note"] = "grayscale; the RGB pictures among them are converted by luminance"
        return size, channels

    def outcome(self, plan: Plan, metrics: dict[str, Any]) -> tuple[str, str]:
        balanced, bar = metrics.get("balanced_accuracy", 0.0), plan.preferences.accuracy_bar
        summary = (f"Trained a 2D DenseNet classifier; on held-out pictures the balanced accuracy is {balanced:.3f} "
                   f"(AUROC {metrics.get('auroc', float('nan')):.3f}, accuracy {metrics.get('accuracy', 0.0):.3f}).")
        if balanced >= bar:
            return "solved", summary
        return "failed", summary + f" This is below the quality bar of {bar}."


@register
class MultiLabel2D(Classification2D):
    """Pictures with several findings each (NIH ChestX-ray14's ``Finding Labels``, ChestMNIST): one sigmoid
    output per finding, positives weighted by their rarity, judged by the AUROC of each finding."""

    name = "multilabel_2d"
    templates = "classification_multilabel"

    def applies(self, intent: Intent, card: dict, compute: ComputeFingerprint, convention: str | None,
                preferences: Preferences) -> str | None:
        findings = card.get("multi_labels") or []
        asked = "classification" in intent.task_types or (not intent.task_types and not card.get("n_labelled"))
        if card.get("dims") != 2 or len(findings) < 2 or not asked or intent.wants_segmentation:
            return None
        return (f"2D pictures with {len(findings)} findings each may have ({', '.join(findings[:6])}"
                f"{', ...' if len(findings) > 6 else ''}): a 2D DenseNet (MONAI) with one output per finding")

    def build(self, plan: Plan, card: dict, intent: Intent, convention: str | None) -> None:
        prefs = plan.preferences
        findings = list(card["multi_labels"])
        plan.structures = dict(enumerate(findings))
        plan.quality_bar = {"auroc_mean": [">=", prefs.auroc_bar]}
        size, channels = self.picture_params(plan, card, out_channels="len(FINDINGS)")
        plan.params.update(findings=repr(findings))
        plan.steps = self.data_steps(plan) + [
            self.cell("split", "Split by patient, keeping the data set's own test split", "Training, validation and "
                      "held-out pictures by patient (a patient's follow-up pictures stay together); the data set's own "
                      "test split is kept as given."),
            Step("render_scan", "render", note="a held-out picture, as stored",
                 args={"image": "test_cases[0].image", "title": "a held-out picture, as stored"}),
            self.cell("train", f"Train a multi-label 2D DenseNet ({prefs.epochs} epochs)", f"Train a 2D DenseNet "
                      f"(MONAI) with one sigmoid output per finding on {size} x {size} pictures for {prefs.epochs} "
                      "epochs; each finding's positives weighted by its rarity; the epoch with the best validation mean "
                      "AUROC is kept."),
            self.cell("evaluate", "Evaluate AUROC per finding on held-out pictures", "Score the held-out pictures: "
                      "AUROC per finding (the usual measure for multi-label radiograph findings) and recall at 0.5."),
        ]

    def outcome(self, plan: Plan, metrics: dict[str, Any]) -> tuple[str, str]:
        mean, bar = metrics.get("auroc_mean", 0.0), plan.preferences.auroc_bar
        per = ", ".join(f"{name} {metrics[f'auroc_{name}']:.3f}" for name in plan.structures.values()
                        if f"auroc_{name}" in metrics)
        summary = f"Trained a multi-label 2D DenseNet; on held-out pictures the mean AUROC is {mean:.3f} ({per})."
        if mean >= bar:
            return "solved", summary
        return "failed", summary + f" This is below the quality bar of {bar}."


@register
class Classification(Recipe):
    name = "classification"
    templates = "classification"

    def applies(self, intent: Intent, card: dict, compute: ComputeFingerprint, convention: str | None,
                preferences: Preferences) -> str | None:
        classes = card.get("classes") or []
        if not _classification_asked(intent, card):
            return None
        if not classes:
            raise PlanFailed("a classification needs the class of each scan: put each class's scans in its own "
                             "sub-folder (e.g. DIR/normal/, DIR/lesion/)")
        return (f"classes from the sub-folders: {', '.join(classes)}; a small 3D CNN with global max pooling on whole "
                "volumes")

    def build(self, plan: Plan, card: dict, intent: Intent, convention: str | None) -> None:
        prefs = plan.preferences
        plan.structures = dict(enumerate(card["classes"]))
        plan.quality_bar = {"balanced_accuracy": [">=", prefs.accuracy_bar]}
        plan.normalisation = "z-score per image, then resized to one common shape"
        shapes = [c["shape"][:3] for c in card["cases"] if c.get("shape")]
        plan.params.update(classes=repr(list(card["classes"])), epochs=prefs.epochs, batch_size=BATCH,
                           shape=tuple(int(min(MAX_SIDE, max(s[i] for s in shapes))) for i in range(3)),
                           convention_arg="", structures=repr(plan.structures))
        plan.steps = self.data_steps(plan) + [
            self.cell("split", "Split by patient", "Split by patient, so no patient is in both the training and the "
                      "held-out set; the class of each scan is its sub-folder."),
            Step("render_scan", "render", note="a held-out scan, as the network sees it",
                 args={"image": "test_cases[0].image", "title": "a held-out scan, as the network sees it"}),
            self.cell("train", f"Train a 3D CNN classifier ({prefs.epochs} epochs)", "Train a small 3D CNN (MONAI "
                      f"convolution blocks, global max pooling) on whole volumes for {prefs.epochs} epochs; each volume "
                      "z-scored on its own."),
            self.cell("evaluate", "Evaluate accuracy per class on held-out patients", "Classify the held-out patients: "
                      "accuracy and recall per class."),
        ]

    def outcome(self, plan: Plan, metrics: dict[str, Any]) -> tuple[str, str]:
        balanced, bar = metrics.get("balanced_accuracy", 0.0), plan.preferences.accuracy_bar
        summary = (f"Trained a 3D CNN classifier; on held-out patients the balanced accuracy is {balanced:.3f} "
                   f"(accuracy {metrics.get('accuracy', 0.0):.3f}).")
        if balanced >= bar:
            return "solved", summary
        return "failed", summary + f" This is below the quality bar of {bar}."
