"""The analysis registry: add-ons a recipe's plan takes when the data calls for them (the heart's ejection fraction,
volumes and LV mass after any segmentation of a heart). An analysis has its own settings and quality bar, its own
templates (plan/templates/<name>/) and the steps it adds at the points a recipe offers:

- ``prediction_checks``: after the held-out patients are segmented, before the predictions are shown and judged;
- ``prediction_measures``: after the predictions are judged;
- ``label_measures``: measured from the given labels (no model).

A new analysis is a new module here, registered with ``@register``.
"""

from __future__ import annotations

# Importing an analysis module registers it.
from jupyter_medagent.plan.analyses import cardiac  # noqa: F401
from jupyter_medagent.plan.analyses.base import (ANALYSES, Analysis, NoSettings, analysis_named, register,
                                                 settings_from, take_analyses)

__all__ = ["ANALYSES", "Analysis", "NoSettings", "analysis_named", "register", "settings_from", "take_analyses"]
