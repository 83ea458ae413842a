"""Judges: the quantitative checks (always) and a vision-language judge (when configured)."""

from jupyter_medagent.contracts.findings import FINDING_KINDS, PITFALL_KINDS, Finding
from jupyter_medagent.judge.quantitative import (
    check_dataset,
    check_pair,
    check_prediction,
    detect_convention,
    display_findings,
    verdict_of,
)

__all__ = [
    "FINDING_KINDS", "PITFALL_KINDS", "Finding", "check_dataset", "check_pair", "check_prediction",
    "detect_convention", "display_findings", "verdict_of",
]
