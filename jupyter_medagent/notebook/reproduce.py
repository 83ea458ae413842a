"""Whether the verification re-run reproduced the numbers the run reported.

A notebook that re-runs without an error has not yet shown that it gives the answer the run reported: a cell
re-run in a kernel whose random state was consumed, or code that reads state the notebook never makes, gives
other numbers. The headline numbers (notebook/headline.py: Dice per structure, EF per patient, volumes, the
quality measures) the run reported are compared with the ones the re-run's own outputs report, each within a
stated tolerance: on a CPU a seeded notebook repeats exactly, on a GPU some convolutions differ in the last
digits, which moves a Dice by far less than 0.01.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jupyter_medagent.notebook.headline import EF_SOURCES, _number
from jupyter_medagent.contracts.mime import METRICS_MIME

# kind -> (absolute tolerance, relative tolerance, how it is written); a value matches within the larger of both.
TOLERANCES = {
    "score": (0.01, 0.0, "{:.3f}"),  # Dice, accuracy
    "points": (1.0, 0.0, "{:.2f}"),  # EF and EF error, in percentage points
    "volume": (1.0, 0.02, "{:.1f}"),  # mL
    "count": (0.0, 0.0, "{:.0f}"),
}
TOLERANCE_TEXT = "Dice and accuracy within 0.01, ejection fractions within 1 point, volumes within 2 % (at least 1 mL), counts exactly"
QUALITY_KINDS = {"dice_mean": ("mean Dice", "score"), "ef_abs_error": ("EF error (points)", "points"),
                 "balanced_accuracy": ("balanced accuracy", "score"), "accuracy": ("accuracy", "score"),
                 "patients_reported": ("patients reported", "count"), "patients_measured": ("patients measured", "count")}


def headline_numbers(metrics: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """The numbers a run's headline shows, by what they are called there: {label: (value, kind)}."""
    numbers: dict[str, tuple[float, str]] = {}
    for key, value in metrics.items():
        if key.startswith("dice_") and key != "dice_mean" and _number(value):
            numbers[f"Dice {key[len('dice_'):]}"] = (float(value), "score")
    for key, source in EF_SOURCES:
        for patient, value in sorted((metrics.get(key) or {}).items()):
            if _number(value):
                numbers[f"EF {patient} (%, {source})"] = (float(value), "points")
    for case, per in sorted((metrics.get("volumes_ml") or {}).items()):
        for structure, value in (per.items() if isinstance(per, dict) else ()):
            if _number(value):
                numbers[f"volume {case} {structure} (mL)"] = (float(value), "volume")
    for key, (name, kind) in QUALITY_KINDS.items():
        if _number(metrics.get(key)):
            numbers[name] = (float(metrics[key]), kind)
    return numbers


def notebook_metrics(nb) -> dict[str, Any]:
    """What a notebook's own outputs report, as the agent loop collects it: every metrics bundle, in order."""
    metrics: dict[str, Any] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            bundle = output.get("data", {}).get(METRICS_MIME)
            if isinstance(bundle, dict):
                metrics.update(bundle)
    return metrics


@dataclass
class Comparison:
    label: str
    reported: str
    rerun: str  # "not reported" when the re-run's outputs lack it
    matches: bool


@dataclass
class Reproduction:
    rows: list[Comparison]

    @property
    def reproduced(self) -> bool:
        return all(row.matches for row in self.rows)

    @property
    def mismatches(self) -> list[Comparison]:
        return [row for row in self.rows if not row.matches]

    def reason(self, shown: int = 4) -> str:
        """Why the run is not solved, in one sentence naming the first differing numbers."""
        parts = [f"{row.label} {row.reported} reported, {row.rerun} on the re-run" for row in self.mismatches[:shown]]
        more = len(self.mismatches) - shown
        return ("the notebook re-ran but did not reproduce its reported numbers: " + "; ".join(parts)
                + (f"; and {more} more" if more > 0 else "") + f" (tolerance: {TOLERANCE_TEXT})")

    def markdown(self) -> str:
        from jupyter_medagent.pipelines.report import markdown_table

        if not self.rows:
            return "*Re-run top to bottom in a fresh kernel; it reported no headline numbers to compare.*"
        table = markdown_table([[r.label, r.reported, r.rerun, "yes" if r.matches else "**no**"] for r in self.rows],
                               ["measure", "reported", "re-run", "within tolerance"])
        if self.reproduced:
            head = (f"**Reproduced:** re-run top to bottom in a fresh kernel, this notebook gave the reported numbers "
                    f"again ({TOLERANCE_TEXT}).")
        else:
            head = (f"**Not reproduced:** re-run top to bottom in a fresh kernel, this notebook gave other numbers than "
                    f"the ones the run reported ({len(self.mismatches)} of {len(self.rows)} outside the tolerance: "
                    f"{TOLERANCE_TEXT}). The outputs below are the re-run's; do not rely on the reported numbers.")
        return f"{head}\n\n{table}"

    def to_dict(self) -> dict[str, Any]:
        return {"reproduced": self.reproduced, "tolerance": TOLERANCE_TEXT, "rows": [asdict(r) for r in self.rows]}


def compare(reported: dict[str, Any], rerun: dict[str, Any]) -> Reproduction:
    """Each headline number of ``reported`` against the same number in ``rerun`` (both run metrics)."""
    again = headline_numbers(rerun)
    rows = []
    for label, (value, kind) in headline_numbers(reported).items():
        absolute, relative, template = TOLERANCES[kind]
        if label not in again:
            rows.append(Comparison(label, template.format(value), "not reported", False))
            continue
        other = again[label][0]
        allowed = max(absolute, relative * abs(value)) + 1e-9
        rows.append(Comparison(label, template.format(value), template.format(other), abs(other - value) <= allowed))
    return Reproduction(rows)
