"""Segmentation recipes: a 3D full-resolution UNet for near-isotropic data on a GPU, a 2D UNet on in-plane
slices otherwise (thick slices, or a CPU). Both normalise by modality, split by patient, train, predict
whole volumes with a sliding window, score held-out patients, look at the predictions and, for the
heart, check the anatomy and measure the ejection fraction."""

from __future__ import annotations

from typing import Any

import numpy as np

from jupyter_medagent.contracts.task import unmet_criteria
from jupyter_medagent.plan.compute import ComputeFingerprint
from jupyter_medagent.plan.intent import Intent
from jupyter_medagent.plan.plan import Plan, Preferences, Step, training_params
from jupyter_medagent.plan.recipes.base import Recipe, Review, register, targets
from jupyter_medagent.plan.training import plan_training

THICK_SLICE_ANISOTROPY = 3.0  # largest/smallest spacing above this: never interpolate across the thick axis
MIN_GPU_GB_3D = 6.0  # free GPU memory below which a 3D full-resolution network is not worth trying
CT_AIR_HU = -500.0  # a 0.5th intensity percentile below this is air in Hounsfield units


class Segmentation(Recipe):
    templates = "segmentation"
    dims = 2

    def wanted(self, intent: Intent, card: dict, convention: str | None) -> bool:
        """A segmentation request on labelled data (not a measurement of the given labels, not a classification)."""
        if not card.get("n_labelled") or not [v for v in card.get("label_values", []) if v != 0]:
            return False
        if intent.from_given_labels or ("classification" in intent.task_types and not intent.wants_segmentation):
            return False
        if intent.task_types == ["measurement"] and card["n_labelled"] == card["n_cases"]:
            return False  # every case already has labels: measure them
        return bool(intent.task_types or intent.structures or intent.anatomy or convention)

    # ------------------------------------------------------------------ the plan
    def build(self, plan: Plan, card: dict, intent: Intent, convention: str | None) -> None:
        prefs = plan.preferences
        plan.anatomy, plan.structures, plan.measures = targets(intent, card, convention)
        plan.convention = convention if plan.anatomy else None
        plan.quality_bar = {"dice_mean": [">=", prefs.dice_bar]}
        plan.training = plan_training(self.dims, card["median_shape"], plan.compute, device=prefs.device,
                                      steps=prefs.steps, batch_size=prefs.batch_size)
        ct = is_ct(card)
        pictures = is_pictures(card)
        channels_seen = {int(k): v for k, v in (card.get("channels") or {"1": 1}).items()}
        in_channels = max(channels_seen, key=lambda k: (channels_seen[k], k)) if pictures else 1
        if pictures:
            plan.normalisation = ("z-score per picture and channel (pictures have no absolute intensity unit)"
                                  + ("" if len(channels_seen) == 1 else ", every picture brought to "
                                     + ("RGB" if in_channels == 3 else "grayscale")))
        else:
            plan.normalisation = ("CT: one Hounsfield window for every scan, from the 0.5-99.5 percentiles of the "
                                  "labelled structures in the training cases" if ct else
                                  "z-score per image (MRI intensities have no absolute unit)")
        cardiac = plan.anatomy == "cardiac" and plan.convention is not None
        plan.params.update(training_params(plan.training), structures=repr(plan.structures),
                           n_classes=max(plan.structures) + 1,
                           convention_arg=f", convention={plan.convention!r}" if plan.convention else "",
                           convention=plan.convention or "", in_channels=in_channels,
                           channels_note="RGB" if in_channels == 3 else "grayscale",
                           hd_unit="px" if pictures else "mm",
                           lv_value=next((v for v, n in plan.structures.items() if n == "LV"), 0),
                           myo_value=next((v for v, n in plan.structures.items() if n == "MYO"), 0))
        steps = self.data_steps(plan) + [
            self.cell("split", "Split by patient into training and held-out sets", "Split by patient, never by frame "
                      "or slice, so no patient is in both the training and the held-out set."),
            self.cell("normalise", "", "Intensity normalisation, as a MONAI transform applied to every image before "
                      "training and prediction: " + plan.normalisation + ".",
                      f"segmentation/normalise_{'picture' if pictures else 'ct' if ct else 'mri'}"),
            self.cell("data", "", self.data_note(plan, pictures), f"segmentation/data_{self.dims}d"),
            self.cell("train", "", ""),
            self.cell("evaluate", "Evaluate Dice and HD95 on held-out patients", "Segment the held-out patients (whole "
                      "volumes, with a sliding window of the training patch) and score them against their reference "
                      "labels: Dice and HD95 per structure" + (" (HD95 in pixels: the pictures state no pixel size)."
                                                               if pictures else ".")),
        ]
        if cardiac:
            steps.append(self.cell("plausibility", "Check the predicted anatomy", "Check that every prediction is "
                                   "anatomically plausible: a closed myocardial ring around the LV, the RV beside it, "
                                   "no stray fragments."))
        steps += [
            Step("render_prediction", "render", "Look at predictions", "held-out case: reference (solid) vs prediction "
                 "(dashed)", args={"image": "example.image", "label": "example.label",
                                   "prediction": "predictions[example.case_id]", "label_names": "STRUCTURES",
                                   "title": "held-out case: reference (solid) vs prediction (dashed)"}),
            Step("judge_predictions", "judge", note="predictions"),
        ]
        if cardiac and "ef" in plan.measures:
            steps.append(self.cell("ejection_fraction", "Check the ejection fraction on held-out patients",
                                   "How far the ejection fraction from the network's segmentations is from the one "
                                   "the reference labels give, on held-out patients."))
            cines = unlabelled_cines(card)
            if cines:
                steps.append(self.cell("cine_curves", f"Read the LV volume curves of {len(cines)} cine(s) without "
                                       "labels", "Patients without reference labels: every frame of their cine is "
                                       "segmented; the LV volume curve gives end-diastole (its peak), end-systole (its "
                                       "dip) and the ejection fraction, the way clinical software reads a cine."))
            steps.append(self.cell("clinical_measures", "Report EDV, ESV, SV, EF and LV mass for every patient",
                                   "The answer, for every patient: end-diastolic and end-systolic volume, stroke "
                                   "volume, ejection fraction and LV mass (myocardium x 1.05 g/mL), indexed to body "
                                   "surface area where height and weight are known; the source column says where "
                                   "each patient's numbers come from."))
            plan.params["curves"] = ("{r.patient: r.measures for r in cine_results if r.measures}" if cines else "{}")
            plan.quality_bar["ef_abs_error"] = ["<=", prefs.ef_bar]
        plan.steps = steps
        self.describe_training(plan)

    def data_note(self, plan: Plan, pictures: bool) -> str:
        if pictures:
            return ("Training pictures: every training picture, normalised as above, padded or cropped to a common "
                    "size, with mild augmentation (small rotations, zooms, shifts, intensity changes).")
        if self.dims == 2:
            return ("Training slices: every in-plane slice of the training volumes, normalised as above, padded to a "
                    "common size, with mild augmentation (small rotations, zooms, shifts, intensity changes).")
        return ("Training patches: 3D crops of the normalised training volumes, half of them centred on a structure, "
                "with mild augmentation.")

    def describe_training(self, plan: Plan) -> None:
        """The train step's title and note from the current training set-up (it changes with repairs)."""
        t = plan.training
        step = plan.step("train")
        step.title = f"Train a {t.dims}D UNet ({t.steps} steps)"
        step.note = (f"Train a {t.dims}D UNet (MONAI) with Dice + cross-entropy loss for {t.steps} steps. "
                     f"{t.describe(plan.compute)}. Why {t.dims}D: {plan.reasons[0]}.")
        if plan.adjustments:
            step.note += " Changed while running: " + "; ".join(plan.adjustments) + "."

    # ------------------------------------------------------------------ while running
    def review(self, plan: Plan, step: Step, data: dict[str, Any]) -> Review | None:
        metrics = data.get("metrics", {})
        checked = {"evaluate": ["dice_mean"], "ejection_fraction": ["ef_abs_error"]}.get(step.name, [])
        missed = unmet_criteria({k: v for k, v in plan.quality_bar.items() if k in checked}, metrics)
        if missed and not any("twice as long" in a for a in plan.adjustments):
            steps = plan.training.steps * 2
            plan.adjustments.append(f"{'; '.join(missed)}, so the network trained twice as long ({steps} steps)")
            plan.retrain(steps=steps, batch_size=plan.training.batch_size, patch=plan.training.patch)
            self.describe_training(plan)
            plan.step("evaluate").note = "Segment the held-out patients again with the longer-trained model."
            since_training = [s.name for s in plan.steps[plan.steps.index(plan.step("train")):plan.steps.index(step) + 1]
                              if s.tool == "cell"]
            return Review(rerun=since_training, repair={"rule": "train_longer", "cell": "train",
                                                        "fix": f"train twice as long ({steps} steps)",
                                                        "error": "; ".join(missed)})
        if step.name == "judge_predictions" and not plan.params["postprocess"] \
                and any(f.get("kind") == "fragmented" for f in data.get("findings", [])):
            plan.params["postprocess"] = (
                "\n# Keep the largest connected piece of each structure: the judge found stray fragments."
                "\nfrom jupyter_medagent.pipelines.segmentation import keep_largest_component"
                "\npredictions = {k: keep_largest_component(v, STRUCTURES) for k, v in predictions.items()}")
            plan.step("evaluate").note = ("Segment the held-out patients, keeping the largest connected piece of each "
                                          "structure, and score them again.")
            # Everything that shows or judges the predictions runs again, so the notebook's checks are of the
            # repaired predictions and the run goes on only once they are judged.
            again = [s.name for s in plan.steps[plan.steps.index(plan.step("evaluate")):plan.steps.index(step) + 1]]
            return Review(rerun=again, repair={"rule": "keep_largest_component", "cell": "evaluate",
                                                      "error": "fragmented predictions",
                                                      "fix": "keep the largest connected component of each structure"})
        return super().review(plan, step, data)

    def outcome(self, plan: Plan, metrics: dict[str, Any]) -> tuple[str, str]:
        mean = metrics.get("dice_mean", float("nan"))
        per = ", ".join(f"{name} {metrics.get(f'dice_{name}', float('nan')):.3f}" for name in plan.structures.values())
        summary = (f"Trained a {plan.training.dims}D UNet on {plan.training.device.upper()}; on held-out patients the "
                   f"mean Dice is {mean:.3f} ({per}).")
        if "ef_abs_error" in metrics:
            summary += f" Ejection fraction differs from the reference labels by {metrics['ef_abs_error']:.1f} points on average."
        if "patients_reported" in metrics:
            summary += (f" Volumes, ejection fraction and LV mass are reported for {metrics['patients_reported']} patients, "
                        "each with the source of its numbers.")
        if plan.fixes:
            summary += (f" The quality checks found {len(plan.fixes)} problem(s) in the data; each was repaired or the "
                        "label excluded, as the fix table shows.")
        missed = unmet_criteria(plan.quality_bar, metrics)
        if not missed:
            return "solved", summary
        return "failed", summary + f" The quality bar is not met: {'; '.join(missed)}."


def unlabelled_cines(card: dict) -> list[dict]:
    """Cines of patients none of whose cases has a label map (an ACDC test patient, say)."""
    labelled = {c["patient_id"] for c in card.get("cases", []) if c.get("label_path")}
    return [c for c in card.get("cines", []) if c["patient"] not in labelled]


def is_pictures(card: dict) -> bool:
    """2D pictures (PNG, JPEG, ...): no pixel size, no intensity unit, perhaps colour."""
    return card.get("dims") == 2 and all(c.get("format", "").startswith("picture")
                                         for c in card.get("cases", []) if not c.get("error"))


def is_ct(card: dict) -> bool:
    """CT by the files' word (DICOM, dataset.json), or by intensities that only Hounsfield units have."""
    modality = (card.get("modality") or "").upper()
    if modality:
        return modality == "CT"
    lows = [c["intensity"]["p0.5"] for c in card.get("cases", []) if c.get("intensity")]
    return bool(lows) and float(np.median(lows)) <= CT_AIR_HU


@register
class Segmentation3D(Segmentation):
    name = "segmentation_3d"
    dims = 3

    def applies(self, intent: Intent, card: dict, compute: ComputeFingerprint, convention: str | None,
                preferences: Preferences) -> str | None:
        if not self.wanted(intent, card, convention) or preferences.dims == 2 or card.get("dims") == 2:
            return None
        if preferences.dims == 3:
            return "a 3D network, as asked for"
        anisotropy = card.get("anisotropy", 1.0)
        if anisotropy <= THICK_SLICE_ANISOTROPY and compute.has_gpu and compute.gpu_free_gb >= MIN_GPU_GB_3D:
            return (f"near-isotropic voxels (anisotropy {anisotropy:.1f}) and a GPU with {compute.gpu_free_gb:.0f} GB "
                    "free: a 3D full-resolution network sees every structure in all three dimensions")
        return None


@register
class Segmentation2D(Segmentation):
    name = "segmentation_2d"
    dims = 2

    def applies(self, intent: Intent, card: dict, compute: ComputeFingerprint, convention: str | None,
                preferences: Preferences) -> str | None:
        if not self.wanted(intent, card, convention):
            return None
        anisotropy = card.get("anisotropy", 1.0)
        if card.get("dims") == 2:
            return "2D pictures: a 2D UNet on whole pictures"
        if preferences.dims == 2:
            return "a 2D network on in-plane slices, as asked for"
        if anisotropy > THICK_SLICE_ANISOTROPY:
            return (f"voxels are {anisotropy:.1f}x longer across slices than in-plane: a 2D network on in-plane "
                    "slices, no interpolation across the thick axis")
        if not compute.has_gpu:
            return ("near-isotropic voxels would suit a 3D network, but on a CPU a 2D network on axial slices reaches "
                    "the same quality within minutes")
        return (f"near-isotropic voxels would suit a 3D network, but the GPU has only {compute.gpu_free_gb:.0f} GB "
                f"free (a 3D full-resolution network needs {MIN_GPU_GB_3D:.0f} GB): a 2D network on axial slices")
