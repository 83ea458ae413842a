"""Identifiers and secrets never reach a model or a saved notebook.

``Redactor.scrub`` is the one function every text bound for a model passes (the agent's view of the
task, every observation, tool error and traceback, judge findings) and every string of a notebook the
agent writes. It replaces known identifiers (values of DICOM identifying tags, patient-like folder
names) and known secrets (values of this process's key/token/password variables). The data card's
builder may feed more identifiers through ``register_identifiers``.

A second line behind keeping secrets and identifiers out of what model code can read: a cell that
prints a value reversed, in base64 (at any alignment inside a longer string), in hex, url-encoded or
with characters spaced apart is scrubbed as well. The Jupyter server's token and the HMAC keys of
connection files this process can see count as secrets.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import re
from pathlib import Path
from urllib.parse import quote, quote_plus
from collections.abc import Iterable

import nbformat

from jupyter_medagent.contracts.mime import MEDAGENT_PREFIX

IDENTIFIED = "[redacted]"
SECRET = "[secret]"
MIN_LENGTH = 3  # shorter values (initials, "M", "1") would blank ordinary text
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.I)
MIN_ENCODED = 6  # shorter values encoded (base64 of "DOE") would match ordinary text by chance
CMDLINE_SECRET = re.compile(r"^--[\w.]*(?:token|password|key)=(.+)$", re.I)
BINARY_MIME = ("image/", "application/pdf", MEDAGENT_PREFIX)


def _variants(value: str) -> set[str]:
    """The spellings an identifier takes in text: DICOM person names (``DOE^JOHN``) also as
    "DOE JOHN", "JOHN DOE", "DOE, JOHN", "DOE_JOHN" and each part; dates also as 1980-01-31."""
    value = value.strip()
    out = {value}
    parts = [p for p in re.split(r"[\^,\s]+", value) if p]
    if len(parts) > 1:
        out |= {" ".join(parts), " ".join(reversed(parts)), ", ".join(parts), "_".join(parts), "^".join(parts)}
        out |= set(parts)
    if re.fullmatch(r"(19|20)\d{6}", value):
        y, m, d = value[:4], value[4:6], value[6:]
        out |= {f"{y}-{m}-{d}", f"{d}.{m}.{y}", f"{m}/{d}/{y}", f"{d}/{m}/{y}"}
    return {v for v in out if len(v) >= MIN_LENGTH}


def _base64_pieces(raw: bytes) -> set[str]:
    """The base64 text that ``raw`` always turns into, whatever sits before and after it: for each of the
    three alignments, the characters whose six bits all come from ``raw`` (standard and url-safe)."""
    pieces = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        start, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        piece = encoded[start:end]
        pieces |= {piece, piece.replace("+", "-").replace("/", "_")}
    return {p for p in pieces if len(p) >= MIN_ENCODED}


def _encoded_pattern(value: str, ignore_case: bool) -> list[str]:
    """Regular expressions for ``value`` reversed, base64, hex, url-encoded and with its letters and digits
    spaced apart by up to three other characters."""
    raw = value.encode("utf-8")
    alternatives = {re.escape(value[::-1])} | {re.escape(p) for p in _base64_pieces(raw)}
    alternatives |= {re.escape(quote(value, safe="")), re.escape(quote_plus(value))}
    alternatives.add(r"(?:\\x|%|0x)?" + r"(?:\\x|%|0x|[\s,:])?".join(f"{b:02x}" for b in raw))
    alnum = re.sub(r"[\W_]+", "", value)
    if len(alnum) >= MIN_ENCODED:
        alternatives.add(r"[\W_]{0,3}".join(re.escape(c) for c in alnum))
        alternatives.add(r"[\W_]{0,3}".join(re.escape(c) for c in reversed(alnum)))
    if not ignore_case:  # hex and %xx digits are case-free even where the value is not
        alternatives = {a if not a.startswith(r"(?:\\x") else f"(?i:{a})" for a in alternatives}
    return sorted(alternatives, key=len, reverse=True)


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        self._identifiers: set[str] = set()
        self._secrets: set[str] = {s for s in secrets if len(s) >= 8}
        self._identifier_pattern: re.Pattern | None = None
        self._encoded: dict[str, re.Pattern | None] = {SECRET: None, IDENTIFIED: None}
        self._encode_secrets()

    @classmethod
    def for_run(cls, data_dir: str | None) -> Redactor:
        """Secrets from this process's environment and from the Jupyter connection files it can see,
        identifiers from the data folder's DICOM headers and patient-like folder names."""
        redactor = cls(environment_secrets() + connection_secrets())
        if data_dir:
            redactor.register_identifiers(dicom_identifiers(data_dir))
        return redactor

    def register_identifiers(self, values: Iterable[str]) -> None:
        added = set()
        for value in values:
            if value and str(value).strip():
                added |= _variants(str(value))
        if added - self._identifiers:
            self._identifiers |= added
            # Longest first, so "DOE^JOHN" is replaced whole before "DOE"; not inside longer words.
            alternatives = "|".join(re.escape(v) for v in sorted(self._identifiers, key=len, reverse=True))
            self._identifier_pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.I)
            whole = {v for v in self._identifiers if len(re.sub(r"[\W_]+", "", v)) >= MIN_ENCODED}
            self._encoded[IDENTIFIED] = _compile_encoded(whole, ignore_case=True)

    def register_secrets(self, values: Iterable[str]) -> None:
        self._secrets |= {v for v in values if v and len(v) >= 8}
        self._encode_secrets()

    def _encode_secrets(self) -> None:
        self._encoded[SECRET] = _compile_encoded(self._secrets, ignore_case=False)

    @property
    def identifiers(self) -> frozenset[str]:
        return frozenset(self._identifiers)

    def scrub(self, text: str) -> str:
        """The text with every known secret and identifier replaced."""
        if not text:
            return text
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, SECRET)
        if self._identifier_pattern is not None:
            text = self._identifier_pattern.sub(IDENTIFIED, text)
        for replacement, pattern in self._encoded.items():
            if pattern is not None:
                text = pattern.sub(replacement, text)
        return text

    def scrub_view(self, view):
        """The agent's view with every text a model will read scrubbed (what backends build payloads from)."""
        from dataclasses import replace

        from jupyter_medagent.agent.protocols import Observation, Step, ToolCall

        def deep(value):
            if isinstance(value, str):
                return self.scrub(value)
            if isinstance(value, list):
                return [deep(v) for v in value]
            if isinstance(value, dict):
                return {k: deep(v) for k, v in value.items()}
            return value

        history = [Step(ToolCall(s.call.name, deep(s.call.arguments), s.call.id),
                        Observation(self.scrub(s.observation.text), s.observation.images, s.observation.data,
                                    s.observation.is_error), s.turn) for s in view.history]
        return replace(view, task=self.scrub(view.task), data_dir=deep(view.data_dir), output_dir=deep(view.output_dir),
                       history=history, cells=deep(view.cells))

    def scrub_notebook(self, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
        """Every string of the notebook (sources, outputs, metadata) scrubbed in place; binary
        outputs (images) are left alone."""
        def walk(node, key=""):
            if isinstance(node, str):
                return node if key.startswith(BINARY_MIME) else self.scrub(node)
            if isinstance(node, list):
                return [walk(item, key) for item in node]
            if isinstance(node, dict):
                for k in list(node):
                    node[k] = walk(node[k], k)
                return node
            return node

        walk(nb)
        return nb


def _compile_encoded(values: Iterable[str], ignore_case: bool) -> re.Pattern | None:
    alternatives = [a for v in sorted(values) for a in _encoded_pattern(v, ignore_case)]
    if not alternatives:
        return None
    return re.compile("|".join(sorted(set(alternatives), key=len, reverse=True)), re.I if ignore_case else 0)


def connection_secrets(runtime_dirs: Iterable[str] | None = None, pids: Iterable[int | str] = ("self",)) -> list[str]:
    """The HMAC keys and tokens of the Jupyter connection and server files in the runtime folders, and those
    named on the command lines of this process and its parents (``-f kernel-….json``, ``--…token=…``)."""
    if runtime_dirs is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dirs = [jupyter_runtime_dir()]
    files = [f for folder in runtime_dirs for f in glob.glob(os.path.join(folder, "*.json"))]
    found: list[str] = []
    for arguments in _command_lines(pids):
        for arg in arguments:
            matched = CMDLINE_SECRET.match(arg)
            if matched:
                found.append(matched.group(1))
            elif arg.endswith(".json") and os.path.isfile(arg):
                files.append(arg)
    for path in files:
        try:
            content = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(content, dict):
            found += [str(content[k]) for k in ("key", "token", "password") if content.get(k)]
    return [v for v in dict.fromkeys(found) if len(v) >= 8]


def _command_lines(pids: Iterable[int | str]) -> list[list[str]]:
    """The arguments of each process and of its ancestors (what ``/proc/<ppid>/cmdline`` shows any reader)."""
    lines, seen = [], set()
    for pid in pids:
        while pid not in seen and pid not in (0, "0"):
            seen.add(pid)
            try:
                lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0"))
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                break
            pid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))
    return lines


def environment_secrets(environ: dict[str, str] | None = None) -> list[str]:
    """Values of variables whose names say they hold a key, token or password."""
    environ = os.environ if environ is None else environ
    return [v for k, v in environ.items() if SECRET_NAME.search(k) and len(v) >= 8]


def dicom_identifiers(folder: str | os.PathLike) -> set[str]:
    """Identifying values in the DICOM headers under ``folder`` (header only, pixels never read) and
    the names of folders that look like person names (``DOE^JOHN``)."""
    from jupyter_medagent.contracts.errors import DataError
    from jupyter_medagent.imaging.dicom import identifying_values, is_dicom, read_header

    values: set[str] = set()
    for path in Path(folder).rglob("*"):
        if path.is_dir():
            if "^" in path.name:
                values.add(path.name)
        elif is_dicom(path):
            try:
                values |= identifying_values(read_header(path))
            except DataError:  # an unreadable file is the data card's finding, not ours
                continue
    return values
