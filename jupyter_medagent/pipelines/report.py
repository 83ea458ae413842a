"""Tables and metric bundles shown by generated cells."""

from __future__ import annotations

from typing import Any

from jupyter_medagent.contracts.mime import METRICS_MIME


def _cell(value) -> str:
    """Text for one markdown table cell: a '|' inside it would end the cell, a newline the row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list, columns: list[str]) -> str:
    """Rows as a Markdown table (a '|' inside a value is escaped).

    Args:
        rows: one sequence of values per row.
        columns: the column names.

    Returns:
        the table as Markdown text ("*(nothing to show)*" without rows).
    """
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) if rows else "*(nothing to show)*"


def table(rows: list, columns: list[str]) -> None:
    """Show rows as a markdown table (readable in the notebook, in exported HTML and by the agent).

    Args:
        rows: one sequence of values per row.
        columns: the column names.

    Returns:
        None; the table is displayed.
    """
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(rows, columns)))


def show_metrics(metrics: dict[str, Any]) -> None:
    """Display metrics for the reader and, under METRICS_MIME, for the agent loop and the results table.

    Args:
        metrics: {key: value} under the keys of the metric vocabulary (prompts/metric_keys.json):
            numbers (dice_mean, ef_abs_error, ...) and per-patient dicts (ef_percent: {patient: percent},
            volumes_ml: {case: {structure: mL}}).

    Returns:
        None; the bundle is displayed (scalars as text, everything as JSON for the agent).
    """
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    text = "\n".join(f"{k}: {v:.4g}" for k, v in scalars.items())
    from IPython.display import display

    display({"text/plain": text, METRICS_MIME: metrics}, raw=True)
