"""The VLM judge: rendered montages and the quantitative findings go to a vision-language model with
the rubrics in ``judge/rubrics/``; a structured verdict comes back in the quantitative judge's vocabulary.

Only the rendered, downsampled PNGs and derived numbers are sent, never voxels or header fields.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from jupyter_medagent.agent.protocols import JudgeVerdict
from jupyter_medagent.imaging.render import downsample
from jupyter_medagent.judge.findings import FINDING_KINDS

RUBRICS = ("alignment", "orientation", "plausibility", "artefacts")
MAX_IMAGES = 4

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["ok", "flag"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "findings": {"type": "array", "items": {"type": "object", "properties": {
            "kind": {"type": "string", "enum": list(FINDING_KINDS)},
            "case": {"type": "string", "description": "case or image the finding is about, as captioned"},
            "severity": {"type": "string", "enum": ["info", "warning", "error"]},
            "message": {"type": "string"}}, "required": ["kind", "message"]}},
    },
    "required": ["verdict", "findings"],
}


@lru_cache(maxsize=1)
def rubric_prompt() -> str:
    folder = resources.files("jupyter_medagent.judge").joinpath("rubrics")
    return "\n\n".join(folder.joinpath(f"{name}.md").read_text().strip() for name in ("preamble", *RUBRICS))


class VLMJudge:
    """Wraps a model backend that can give a structured answer (``ask_structured``)."""

    name = "vlm"

    def __init__(self, client):
        self.client = client
        self.model = client.model

    def judge(self, images: list[bytes], findings: list[dict[str, Any]], context: str) -> JudgeVerdict:
        if not images:  # nothing to look at: the quantitative judge speaks alone
            return JudgeVerdict("not_checked", [], confidence=None)
        shown = [downsample(png) for png in images[-MAX_IMAGES:]]
        numbers = "\n".join(f"- {f.get('case')}: {f.get('kind')} ({f.get('severity')}): {f.get('message')}"
                            for f in findings) or "(none)"
        text = (f"What the pipeline step was: {context or 'not stated'}\n"
                f"{len(shown)} montage(s) attached, most recent last.\n"
                f"The quantitative checks found:\n{numbers}\n\nGive your verdict.")
        answer, usage = self.client.ask_structured(rubric_prompt(), text, shown, VERDICT_SCHEMA)
        return JudgeVerdict(*self.validate(answer), usage=usage)

    @staticmethod
    def validate(answer: dict[str, Any]) -> tuple[str, list[dict[str, Any]], float | None]:
        """Keep what follows the schema; an unknown kind is kept as the message of a generic finding."""
        verdict = answer.get("verdict") if answer.get("verdict") in ("ok", "flag") else "flag"
        findings = []
        for item in answer.get("findings") or []:
            if not isinstance(item, dict):
                continue
            kind = item.get("kind")
            message = str(item.get("message") or "")
            if kind not in FINDING_KINDS:
                message, kind = f"({kind}) {message}", "implausible_anatomy"
            findings.append({"case": str(item.get("case") or "montage"), "kind": kind, "message": message,
                             "severity": item.get("severity") if item.get("severity") in ("info", "warning", "error")
                             else "warning", "evidence": {"judge": "vlm"}})
        try:
            confidence = min(1.0, max(0.0, float(answer["confidence"]))) if "confidence" in answer else None
        except (TypeError, ValueError):
            confidence = None
        return verdict, findings, confidence

    def __repr__(self) -> str:
        return f"VLMJudge({self.client.name}:{self.model})"


__all__ = ["VLMJudge", "VERDICT_SCHEMA", "rubric_prompt"]
