"""Whether a benchmark run solved its task: it must claim success, its notebook must have re-run on its own,
and every criterion of the task's judge (from the suite file) must agree, checked against the truth the
task's data maker returned to the bench's driver.

Criteria read the metrics the run's cells reported (``show_metrics`` / the metrics MIME bundle) and, for
planted pitfalls, the refined notebook. Per-patient values are {patient: value} dicts; the names each
criterion accepts are listed in ``METRIC_NAMES`` (the system prompt asks model backends for the same).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any
from collections.abc import Callable

from jupyter_medagent.contracts.metric_keys import EF_ANSWER_KEYS

# Metric names a criterion reads, first found wins: the one vocabulary the recipes and the system prompt use.
METRIC_NAMES = {
    "ef": EF_ANSWER_KEYS,
    "volumes": ("volumes_ml",),
}

Verdict = tuple[bool, str]  # (met, what was found, in a few words)
CRITERIA: dict[str, Callable[..., Verdict]] = {}


def criterion(function: Callable[..., Verdict]) -> Callable[..., Verdict]:
    CRITERIA[function.__name__] = function
    return function


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _per_patient(metrics: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((metrics[k] for k in METRIC_NAMES[kind] if isinstance(metrics.get(k), dict)), {})


def _at_least(run: dict[str, Any], metric: str, label: str, bar: float) -> Verdict:
    value = _number(run["metrics"].get(metric))
    if value is None:
        return False, f"no {metric} reported"
    return value >= bar, f"{label} {value:.3f} (bar {bar})"


@criterion
def dice_mean(run: dict[str, Any], truth: dict[str, Any], bar: float) -> Verdict:
    """Mean Dice on held-out cases at least ``bar``."""
    return _at_least(run, "dice_mean", "Dice", bar)


@criterion
def balanced_accuracy(run: dict[str, Any], truth: dict[str, Any], bar: float) -> Verdict:
    """Balanced accuracy on held-out cases at least ``bar``."""
    return _at_least(run, "balanced_accuracy", "balanced accuracy", bar)


@criterion
def ef_error(run: dict[str, Any], truth: dict[str, Any], tolerance: float, min_patients: int = 1,
             statistic: str = "mean") -> Verdict:
    """Ejection fraction per patient against the phantom's truth: the ``statistic`` (mean or max) of the
    absolute errors within ``tolerance`` points, over at least ``min_patients`` reported patients."""
    reported = _per_patient(run["metrics"], "ef")
    errors = [abs(v - truth["ef"][p]) for p, value in reported.items()
              if p in truth["ef"] and (v := _number(value)) is not None]
    if len(errors) < min_patients:
        return False, f"EF for {len(errors)} patient(s), needed {min_patients}"
    error = max(errors) if statistic == "max" else statistics.mean(errors)
    return error <= tolerance, f"EF error {statistic} {error:.2f} points on {len(errors)} patient(s)"


@criterion
def volume_error(run: dict[str, Any], truth: dict[str, Any], tolerance_percent: float, key: str) -> Verdict:
    """Every case's volume (truth[key]: {case: mL}) within ``tolerance_percent`` of the truth; a case reports
    {structure: mL} (its single structure, or the sum) or a number."""
    reported = _per_patient(run["metrics"], "volumes")
    errors = {}
    for case, expected in truth[key].items():
        value = reported.get(case)
        value = sum(_number(v) or 0.0 for v in value.values()) if isinstance(value, dict) else _number(value)
        if value is None:
            return False, f"no volume reported for {case}"
        errors[case] = abs(value - expected) / expected * 100
    worst = max(errors, key=errors.get)
    return errors[worst] <= tolerance_percent, f"volume error up to {errors[worst]:.1f}% ({worst})"


# Pitfalls that change an answer measured from the label maps themselves (a volume, an EF): a flipped or
# permuted label has the same voxel count, and an image's intensity scale is not in a label at all; a swapped
# convention, eroded or empty labels and a wrong header spacing change the number.
CHANGES_A_LABEL_MEASUREMENT = ("label_convention", "interpolated_labels", "empty_label", "spacing_mismatch",
                               "stray_labels", "geometry_mismatch")


@criterion
def pitfalls_handled(run: dict[str, Any], truth: dict[str, Any], measured_from: str | None = None) -> Verdict:
    """Every planted pitfall that can change the answer handled: in the run's fix log (a backend that keeps one,
    like the offline planner), or its case named in a code cell of the refined notebook (a model that fixes or
    excludes a case names it), unless that cell names nearly every case: a list of them all singles out nothing.

    ``measured_from = "labels"``: the answer is measured from the given label maps, so only the pitfalls in
    CHANGES_A_LABEL_MEASUREMENT count; the others are named in the verdict as not counted."""
    if measured_from not in (None, "labels"):
        raise ValueError(f"pitfalls_handled: measured_from must be 'labels' or absent, not {measured_from!r}")
    counted = [p for p in truth["pitfalls"] if measured_from is None or p["kind"] in CHANGES_A_LABEL_MEASUREMENT]
    moot = [f"{p['case']}:{p['kind']}" for p in truth["pitfalls"] if p not in counted]
    met, what = _pitfalls_handled(run, {**truth, "pitfalls": counted})
    if moot:
        what += f"; not counted, they cannot change a measurement from labels: {', '.join(moot[:4])}" + \
                (f" and {len(moot) - 4} more" if len(moot) > 4 else "")
    return met, what


def _pitfalls_handled(run: dict[str, Any], truth: dict[str, Any]) -> Verdict:
    notebook = run.get("notebook")
    if not notebook or not Path(notebook).exists():
        return False, "no notebook to look for the fixes in"
    nb = json.loads(Path(notebook).read_text())
    logged = {(f["case"], f["finding"]) for f in nb.get("metadata", {}).get("medagent", {}).get("findings_fixed", [])}
    broken = {p["case"] for p in truth["pitfalls"]}
    named: set[str] = set()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            mine = {c for c in truth["cases"] if repr(c) in source or f'"{c}"' in source}
            if len(mine) <= len(broken) or len(mine) < 0.8 * len(truth["cases"]):
                named |= mine
    missed = [f"{p['case']}:{p['kind']}" for p in truth["pitfalls"]
              if (p["case"], p["kind"]) not in logged and p["case"] not in named]
    planted = len(truth["pitfalls"])
    if missed:
        return False, f"pitfalls handled {planted - len(missed)}/{planted} (missed {', '.join(missed[:3])})"
    return True, f"pitfalls handled {planted}/{planted}"


def judge_run(run: dict[str, Any], truth: dict[str, Any], criteria: dict[str, dict[str, Any]]) -> Verdict:
    """Solved or not, and why: the run's own claim, its re-run, then each criterion of the task."""
    if run["status"] != "solved":
        return False, f"{run['status']}: {run['reason']}"[:200]
    if not run.get("reexecuted_ok"):
        return False, "the notebook did not re-run on its own"
    found = []
    for name, params in criteria.items():
        met, what = CRITERIA[name](run, truth, **params)
        found.append(what)
        if not met:
            return False, "; ".join(found)
    return True, "; ".join(found)
