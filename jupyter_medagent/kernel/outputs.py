"""Helpers shared by the executors: ANSI stripping and merging of stream outputs."""

from __future__ import annotations

import re
from typing import Any

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def error_dict(ename: str, evalue: str, traceback: list[str]) -> dict[str, Any]:
    return {"ename": ename, "evalue": strip_ansi(evalue), "traceback": [strip_ansi(line) for line in traceback]}


def append_output(outputs: list[dict[str, Any]], output: dict[str, Any]) -> None:
    """Append, merging consecutive text on the same stream (as Jupyter front ends do)."""
    if output.get("output_type") == "stream" and outputs and outputs[-1].get("output_type") == "stream" \
            and outputs[-1].get("name") == output.get("name"):
        outputs[-1]["text"] += output["text"]
    else:
        outputs.append(output)
