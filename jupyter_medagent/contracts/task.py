"""What the user asked for, where the data is, and what counts as solved."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any

COMPARISONS = {">=": operator.ge, "<=": operator.le}


@dataclass
class Task:
    request: str
    data_dir: str | None = None
    output_dir: str = "."
    # metric name -> [">=" or "<=", threshold]; e.g. {"dice_mean": [">=", 0.90], "ef_abs_error": ["<=", 3.0]}
    acceptance: dict[str, list] = field(default_factory=dict)
    # The kernels start in the notebook's folder or in output_dir beside it, so paths under the notebook's folder
    # may be written relative to it; not so for kernels on a gateway, which see the data at its absolute path.
    relative_paths: bool = True

    def unmet(self, metrics: dict[str, Any]) -> list[str]:
        """Acceptance criteria the metrics do not meet, in plain words (empty when all are met)."""
        return unmet_criteria(self.acceptance, metrics)


def unmet_criteria(criteria: dict[str, list], metrics: dict[str, Any]) -> list[str]:
    """``criteria`` ({metric: [op, threshold]}) that ``metrics`` do not meet, in plain words."""
    problems = []
    for name, (op, threshold) in criteria.items():
        value = metrics.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            problems.append(f"{name} was not measured (needed {op} {threshold})")
        elif not COMPARISONS[op](float(value), float(threshold)):
            problems.append(f"{name} = {float(value):.3g}, needed {op} {threshold}")
    return problems
