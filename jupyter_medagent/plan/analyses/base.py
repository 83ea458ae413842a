"""What every analysis is: the Analysis base class, its settings, and the registry it joins with ``@register``."""


from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from jupyter_medagent.plan.plan import Plan, Preferences, Step


@dataclass
class NoSettings:
    """A recipe or analysis with nothing for the user to set."""


def settings_from(settings_class: type, preferences: Preferences) -> Any:
    """``settings_class`` filled with the values the user gave for its fields (the rest keep their defaults)."""
    names = {f.name for f in fields(settings_class)}
    return settings_class(**{k: v for k, v in preferences.settings.items() if k in names})


class Analysis:
    name = ""  # also its templates' folder under plan/templates
    Settings: type = NoSettings
    checks: dict[str, list[str]] = {}  # step name -> the quality-bar metrics that step reports

    def applies(self, plan: Plan) -> bool:
        raise NotImplementedError

    def configure(self, plan: Plan, settings: Any, card: dict, predicts: bool) -> None:
        """Add this analysis's template parameters and quality bar to ``plan``; ``predicts``: the recipe's network
        predicts what the analysis measures (else it measures the given labels)."""

    def prediction_checks(self, plan: Plan, card: dict) -> list[Step]:
        return []

    def prediction_measures(self, plan: Plan, card: dict) -> list[Step]:
        return []

    def label_measures(self, plan: Plan, card: dict) -> list[Step]:
        return []

    def summary(self, plan: Plan, metrics: dict[str, Any]) -> str:
        """Sentences for the run's summary from what this analysis measured ("" if nothing)."""
        return ""

    def cell(self, name: str, title: str, note: str, template: str | None = None) -> Step:
        return Step(name, "cell", title, note, f"{self.name}/{template or name}")


ANALYSES: list[Analysis] = []


def register(analysis_class: type[Analysis]) -> type[Analysis]:
    ANALYSES.append(analysis_class())
    return analysis_class


def analysis_named(name: str) -> Analysis:
    return next(a for a in ANALYSES if a.name == name)


def take_analyses(plan: Plan, card: dict, *, predicts: bool) -> list[Analysis]:
    """The analyses that apply to ``plan``, configured into it (``plan.analyses`` holds their settings)."""
    taken = [a for a in ANALYSES if a.applies(plan)]
    for analysis in taken:
        settings = plan.analyses[analysis.name] = settings_from(analysis.Settings, plan.preferences)
        analysis.configure(plan, settings, card, predicts)
    return taken
