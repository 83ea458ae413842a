"""The judge panel: the quantitative verdict always, other judges (e.g. a VLM) when configured."""

from __future__ import annotations

from typing import Any

from jupyter_medagent.contracts.protocols import Judge, JudgeVerdict
from jupyter_medagent.judge.quantitative import verdict_of


class QuantitativeJudge:
    """Verdict from the findings the cells' quantitative checks reported; needs no model."""

    name = "quantitative"

    def judge(self, images: list[bytes], findings: list[dict[str, Any]], context: str) -> JudgeVerdict:
        return JudgeVerdict(verdict_of(findings), list(findings), confidence=1.0)


def merge_verdicts(verdicts: dict[str, JudgeVerdict]) -> tuple[JudgeVerdict, list[str]]:
    """Flag when any judge flags; findings are pooled; disagreements are described for the provenance.
    A judge that had nothing to look at ("not_checked") takes no part; if none could look, nothing was checked."""
    verdicts = {name: v for name, v in verdicts.items() if v.verdict != "not_checked"}
    if not verdicts:
        return JudgeVerdict("not_checked", []), []
    findings, seen = [], set()
    for verdict in verdicts.values():
        for f in verdict.findings:
            key = (f.get("case"), f.get("kind"), f.get("message"))
            if key not in seen:
                seen.add(key)
                findings.append(f)
    flags = {name for name, v in verdicts.items() if v.verdict == "flag"}
    disagreements = []
    if flags and len(flags) < len(verdicts):
        oks = sorted(set(verdicts) - flags)
        disagreements.append(f"{', '.join(sorted(flags))} flagged while {', '.join(oks)} found nothing wrong")
    return JudgeVerdict("flag" if flags else "ok", findings), disagreements


def default_judges(extra: list[Judge] | None = None) -> list[Judge]:
    return [QuantitativeJudge(), *(extra or [])]
