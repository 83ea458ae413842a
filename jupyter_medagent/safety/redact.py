"""Identifiers and secrets never reach a model or a saved notebook.

``Redactor.scrub`` is the one function every text bound for a model passes (the agent's view of the
task, every observation, tool error and traceback, judge findings) and every string of a notebook the
agent writes. It replaces known identifiers (values of DICOM identifying tags, patient-like folder
names) and known secrets (values of this process's key/token/password variables). The data card's
builder may feed more identifiers through ``register_identifiers``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

import nbformat

IDENTIFIED = "[redacted]"
SECRET = "[secret]"
MIN_LENGTH = 3  # shorter values (initials, "M", "1") would blank ordinary text
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.I)
BINARY_MIME = ("image/", "application/pdf", "application/vnd.medagent")


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


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        self._identifiers: set[str] = set()
        self._secrets: set[str] = {s for s in secrets if len(s) >= 8}
        self._identifier_pattern: re.Pattern | None = None

    @classmethod
    def for_run(cls, data_dir: str | None) -> "Redactor":
        """Secrets from this process's environment, identifiers from the data folder's DICOM headers
        and patient-like folder names."""
        redactor = cls(environment_secrets())
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

    def register_secrets(self, values: Iterable[str]) -> None:
        self._secrets |= {v for v in values if v and len(v) >= 8}

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


def environment_secrets(environ: dict[str, str] | None = None) -> list[str]:
    """Values of variables whose names say they hold a key, token or password."""
    environ = os.environ if environ is None else environ
    return [v for k, v in environ.items() if SECRET_NAME.search(k) and len(v) >= 8]


def dicom_identifiers(folder: str | os.PathLike) -> set[str]:
    """Identifying values in the DICOM headers under ``folder`` (header only, pixels never read) and
    the names of folders that look like person names (``DOE^JOHN``)."""
    from jupyter_medagent.errors import DataError
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
