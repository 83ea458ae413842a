"""Helpers shared by the executors (ANSI stripping, merging of stream outputs) and the text a model reads of a
cell's outputs."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

from jupyter_medagent.contracts.mime import COMPUTE_MIME, FINDINGS_MIME, METRICS_MIME

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


# ------------------------------------------------------------------------- what a model reads of a cell's outputs
def outputs_as_text(outputs: list[dict[str, Any]]) -> str:
    """Every output of a cell as text a language model can read, in the order the cell made them.

    Streams as printed; findings one line each; metric bundles as JSON (nested per-patient dicts included);
    Markdown as written; HTML with its tables as Markdown rows; images as a numbered marker (the PNGs
    themselves go with the tool result that ran the cell). Errors are left to the caller (tracebacks).
    """
    parts: list[str] = []
    images = 0
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(strip_ansi(output.get("text", "")).rstrip("\n"))
            continue
        if kind not in ("display_data", "execute_result"):
            continue
        data = output.get("data", {})
        if FINDINGS_MIME in data:
            parts.append(findings_text(data[FINDINGS_MIME].get("findings", [])))
        elif METRICS_MIME in data:
            parts.append("metrics: " + json.dumps(data[METRICS_MIME], default=str, separators=(", ", ": ")))
        elif COMPUTE_MIME in data:
            parts.append(str(data.get("text/plain", "")))
        elif "image/png" in data:
            images += 1
            parts.append(f"[image {images}: attached to this result]")
        elif "text/markdown" in data:
            parts.append(str(data["text/markdown"]).strip())
        elif "text/html" in data:
            parts.append(html_to_text(str(data["text/html"])))
        elif "text/plain" in data:
            parts.append(strip_ansi(str(data["text/plain"])))
    return "\n".join(p for p in parts if p)


def findings_text(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "quality findings: none"
    lines = [f"quality findings: {len(findings)}"]
    lines += [f"- {f.get('case', '?')}: {f.get('kind', '?')} ({f.get('severity', '?')}): {f.get('message', '')}"
              + (f" evidence={json.dumps(f['evidence'], default=str)}" if f.get("evidence") else "")
              for f in findings]
    return "\n".join(lines)


class _HTMLText(HTMLParser):
    """HTML reduced to text: tables as Markdown rows, blocks on their own lines, all other markup dropped."""

    BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "ul", "ol", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.text: list[str] = []
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.rows_in_table = 0
        self.skip = 0  # inside <style> or <script>

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self.skip += 1
        elif tag == "table":
            self._flush()
            self.rows_in_table = 0
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
        elif tag in self.BLOCKS:
            self._flush()

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self.skip = max(0, self.skip - 1)
        elif tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(" ".join("".join(self.cell).split()).replace("|", "\\|"))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.row:
                self.lines.append("| " + " | ".join(self.row) + " |")
                if self.rows_in_table == 0:
                    self.lines.append("|" + "---|" * len(self.row))
                self.rows_in_table += 1
            self.row = None
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data):
        if self.skip:
            return
        (self.cell if self.cell is not None else self.text).append(data)

    def _flush(self) -> None:
        text = " ".join("".join(self.text).split())
        if text:
            self.lines.append(text)
        self.text = []

    def result(self) -> str:
        self.close()
        self._flush()
        return "\n".join(self.lines)


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    parser.feed(html)
    return parser.result()


def cut_lines(text: str, limit: int, *, cell_id: str, first_line: int = 1) -> str:
    """``text`` within ``limit`` characters, cut at line boundaries: the head and the tail are kept and the cut
    is named (which lines, how many characters) with the read_output call that returns them. ``first_line``:
    the number of ``text``'s first line in the whole output."""
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    head: list[str] = []
    tail: list[str] = []
    used = 0
    budget = limit - 200  # room for the notice
    for line in lines:  # two thirds for the head, where a cell's first results usually are
        if used + len(line) + 1 > budget * 2 // 3:
            break
        head.append(line)
        used += len(line) + 1
    for line in reversed(lines[len(head):]):
        if used + len(line) + 1 > budget:
            break
        tail.insert(0, line)
        used += len(line) + 1
    first, last = len(head) + 1, len(lines) - len(tail)
    if first > last or not head:  # a single line longer than the limit: cut it, and say so
        return text[:limit - 120] + f"\n[... {len(text) - limit + 120} characters cut; read_output(cell_id={cell_id!r}) returns them]"
    cut = sum(len(line) + 1 for line in lines[first - 1:last])
    first, last, total = first + first_line - 1, last + first_line - 1, len(lines) + first_line - 1
    notice = (f"[... lines {first}-{last} of {total} cut ({cut} characters); "
              f"read_output(cell_id={cell_id!r}, start={first}, end={last}) returns them]")
    return "\n".join(head + [notice] + tail)
