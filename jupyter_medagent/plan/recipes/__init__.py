"""The recipe registry. A recipe says when it applies, fills in a Plan (configuration and ordered steps,
from its own templates under plan/templates/), reviews what its steps returned, and judges the outcome.
A new kind of task is a new module here, registered with ``@register``; nothing else changes.

Recipes are tried in registration order; the first that applies is used.
"""

from __future__ import annotations

from jupyter_medagent.plan.compute import ComputeFingerprint
from jupyter_medagent.plan.intent import Intent
from jupyter_medagent.plan.plan import PlanFailed, Preferences
# Importing a recipe module registers it; registration order is priority order.
from jupyter_medagent.plan.recipes import classification, measurement, segmentation  # noqa: F401
from jupyter_medagent.plan.recipes.base import RECIPES, Recipe, recipe_named

__all__ = ["Recipe", "choose_recipe", "recipe_named"]


def choose_recipe(intent: Intent, card: dict, compute: ComputeFingerprint, convention: str | None,
                  preferences: Preferences) -> tuple[Recipe, str]:
    for recipe in RECIPES:
        reason = recipe.applies(intent, card, compute, convention, preferences)
        if reason:
            return recipe, reason
    unreadable = [c["error"] for c in card.get("cases", []) if c.get("error")]
    if unreadable and len(unreadable) == len(card.get("cases", [])):  # the data card's own words, as inspect says them
        more = f" (and {len(unreadable) - 1} more case(s) like it)" if len(unreadable) > 1 else ""
        raise PlanFailed(f"none of the {len(unreadable)} case(s) in the data could be read: {unreadable[0]}{more}")
    if not [v for v in card.get("label_values", []) if v != 0] or not card.get("n_labelled"):
        raise PlanFailed("the data has no label maps, so there is nothing to learn a segmentation from or to measure; "
                         "add label maps (e.g. labelsTr/) for at least some cases")
    raise PlanFailed("I could not tell what to segment or measure from the request: name the structures "
                     "(e.g. 'segment the left ventricle') or the measure (e.g. 'ejection fraction')")
