"""The numbers the user asked for, picked out of a run's metrics for every front door's results box.

A run's metrics hold everything its cells reported (counts, timings, per-structure scores, per-patient
dictionaries). The headline is the part a reader looks for first: Dice per structure on held-out patients,
the ejection fraction of every patient with the source of its number, and a task's own quality measure.
Each item is a small table: ``{"title", "columns", "rows"}`` with the values already formatted.
"""

from __future__ import annotations

from typing import Any

# Per-patient EF dictionaries and where their numbers come from: the offline templates' names, then the one the
# system prompt asks model backends to use.
EF_SOURCES = (("ef_predicted", "network"), ("ef_reference", "reference labels (training)"),
              ("ef_measured", "given labels"), ("ef_percent", "the analysis's cells"))
# Scalars worth a line of their own, with how to say them.
QUALITY = (("dice_mean", "mean Dice (held-out)", "{:.3f}"),
           ("ef_abs_error", "EF error vs reference labels (points)", "{:.2f}"),
           ("balanced_accuracy", "balanced accuracy (held-out)", "{:.3f}"),
           ("accuracy", "accuracy (held-out)", "{:.3f}"),
           ("patients_reported", "patients reported", "{:.0f}"),
           ("patients_measured", "patients measured", "{:.0f}"))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # NaN is no answer


def headline(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    tables = []
    dice = [(key[len("dice_"):], value) for key, value in metrics.items()
            if key.startswith("dice_") and key != "dice_mean" and _number(value)]
    if dice:
        tables.append({"title": "Dice on held-out patients", "columns": ["structure", "Dice"],
                       "rows": [[name, f"{value:.3f}"] for name, value in dice]})
    ef_rows = []
    for key, source in EF_SOURCES:
        for patient, value in sorted((metrics.get(key) or {}).items()):
            if _number(value):
                ef_rows.append([patient, f"{value:.1f}", source])
    if ef_rows:
        tables.append({"title": "Ejection fraction per patient", "columns": ["patient", "EF (%)", "from"],
                       "rows": sorted(ef_rows)})
    volumes = {case: {str(name): ml for name, ml in per.items()}
               for case, per in sorted((metrics.get("volumes_ml") or {}).items()) if isinstance(per, dict)}
    structures = sorted({name for per in volumes.values() for name in per})
    if structures:  # {case: {structure: mL}}, as the system prompt asks model backends to report volumes
        tables.append({"title": "Volumes (mL)", "columns": ["case"] + structures,
                       "rows": [[case] + [f"{per[name]:.1f}" if _number(per.get(name)) else "" for name in structures]
                                for case, per in volumes.items()]})
    quality = [[label, template.format(metrics[key])] for key, label, template in QUALITY if _number(metrics.get(key))]
    if quality:
        tables.append({"title": "Quality", "columns": ["measure", "value"], "rows": quality})
    return tables


def headline_text(tables: list[dict[str, Any]]) -> str:
    """The headline as Markdown (the chat, the CLI's summary)."""
    from jupyter_medagent.pipelines.report import markdown_table

    return "\n\n".join(f"**{t['title']}**\n\n{markdown_table(t['rows'], t['columns'])}" for t in tables)
