"""``make_plan``: the first recipe of the registry that fits the request and the data fills in a Plan."""

from __future__ import annotations

from typing import Any

from jupyter_medagent.plan.compute import ComputeFingerprint
from jupyter_medagent.plan.intent import Intent
from jupyter_medagent.plan.plan import Plan, Preferences, data_location, fix_entries
from jupyter_medagent.plan.recipes import choose_recipe


def make_plan(card: dict[str, Any], intent: Intent, compute: ComputeFingerprint, *, data_dir: str,
              convention: str | None = None, findings: list[dict] = (), preferences: Preferences | None = None,
              output_dir: str | None = None) -> Plan:
    """The plan for ``intent`` on the data described by ``card`` (DataCard.to_dict()) on this machine;
    ``output_dir``: the run's output folder, next to its notebook (data paths are written relative to it)."""
    preferences = preferences or Preferences()
    recipe, reason = choose_recipe(intent, card, compute, convention, preferences)
    data = {k: card.get(k) for k in ("n_cases", "n_labelled", "n_patients", "modality", "median_spacing", "median_shape",
                                     "anisotropy", "label_values", "classes", "layout")}
    plan = Plan(recipe.name, [reason], data, compute, preferences)
    fixes, plan.fixes = fix_entries(list(findings))
    plan.params = {"data_location": data_location(data_dir, output_dir), "seed": preferences.seed, "fixes": fixes,
                   "test_fraction": preferences.test_fraction, "postprocess": "",
                   "request_modality": (f"\nif not card.stated_modality:  # the files do not say; the request does"
                                        f"\n    card.stated_modality = {intent.modality!r}" if intent.modality else ""),
                   "device": "torch.device(COMPUTE.device)",
                   "amp": 'COMPUTE.bf16 and DEVICE.type == "cuda"  # bf16 autocast where the GPU computes it natively'}
    recipe.build(plan, card, intent, convention)
    return plan
