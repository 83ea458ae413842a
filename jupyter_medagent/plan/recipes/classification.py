"""Classification recipe: one class per sub-folder, a small 3D CNN with global max pooling on whole volumes
(a small finding anywhere can decide the class), judged by balanced accuracy on held-out patients."""

from __future__ import annotations

from typing import Any

from jupyter_medagent.plan.compute import ComputeFingerprint
from jupyter_medagent.plan.intent import Intent
from jupyter_medagent.plan.plan import Plan, PlanFailed, Preferences, Step
from jupyter_medagent.plan.recipes import Recipe, register

MAX_SIDE = 64  # volumes are resized to at most 64 voxels a side: enough for a lesion, cheap on a CPU
BATCH = 16


@register
class Classification(Recipe):
    name = "classification"
    templates = "classification"

    def applies(self, intent: Intent, card: dict, compute: ComputeFingerprint, convention: str | None,
                preferences: Preferences) -> str | None:
        classes = card.get("classes") or []
        asked = "classification" in intent.task_types and not intent.wants_segmentation
        # A request that names no task ("which of these are abnormal?") on scans sorted into class folders,
        # without label maps: classifying them is the only task the data supports.
        implied = not intent.task_types and len(classes) >= 2 and not card.get("n_labelled")
        if not (asked or implied):
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
