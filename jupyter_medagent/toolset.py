"""medagent's imaging tools as plain functions, for any agent: the agent loop's ``inspect_data`` text comes from
here, and ``medagent mcp`` and Jupyter AI's MCP server (``jupyter_medagent.mcp_tools``) serve these functions.

Each function takes typed arguments (they become its MCP schema), reads only inside the folders the user
allowed (``allow_folders``; by default the running Jupyter server's root folder, else the working
directory), and answers with an ``Answer``: text a model can read, the same facts as JSON, and images.
Every text is scrubbed of the data's identifying values (DICOM identifying tags, person-like folder names)
and of secrets, as the model backends' view is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_medagent.contracts.errors import MedagentError
from jupyter_medagent.safety.quoting import quote_untrusted
from jupyter_medagent.safety.redact import Redactor

ALLOW_ENV = "MEDAGENT_ALLOW"  # folders, separated by os.pathsep; what --allow sets for a whole process
RENDER_MAX_WIDTH = 1024  # px; a montage wider than this is downsampled

_allowed: list[Path] | None = None


class PathRefused(MedagentError):
    """A path outside the folders the user allowed, or a link that leads out of them."""


@dataclass
class Answer:
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    images: list[bytes] = field(default_factory=list)  # PNG


# ---------------------------------------------------------------------- confinement
def allow_folders(folders: list[str | os.PathLike] | None) -> None:
    """The folders tools may read and write in (None: back to the default)."""
    global _allowed
    _allowed = None if folders is None else [_existing_folder(f) for f in folders]


def _existing_folder(folder) -> Path:
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise MedagentError(f"{folder}: not a folder, so it cannot be allowed")
    return path


def allowed_folders() -> list[Path]:
    """What ``allow_folders`` set, else $MEDAGENT_ALLOW, else the Jupyter server's root folder, else the
    working directory."""
    if _allowed is not None:
        return list(_allowed)
    if os.environ.get(ALLOW_ENV):
        return [_existing_folder(f) for f in os.environ[ALLOW_ENV].split(os.pathsep) if f]
    root = _jupyter_root()
    return [Path(root).resolve() if root else Path.cwd().resolve()]


def _jupyter_root() -> str | None:
    try:
        from jupyter_server.serverapp import ServerApp
    except ImportError:
        return None
    return ServerApp.instance().root_dir if ServerApp.initialized() else None


def confine(path: str, what: str, *, must_exist: bool = True) -> Path:
    """``path`` resolved (a relative one starts at the first allowed folder, links followed), if it lies inside an
    allowed folder; a folder's own links must not lead out either. Raises PathRefused naming the path."""
    allowed = allowed_folders()
    given = Path(path).expanduser()
    resolved = (given if given.is_absolute() else allowed[0] / given).resolve()
    where = ", ".join(str(a) for a in allowed)
    if not any(resolved.is_relative_to(a) for a in allowed):
        via = f" (it leads to {resolved})" if resolved != given and resolved != allowed[0] / given else ""
        raise PathRefused(f"{what} {path!r} is outside the folders medagent may use{via}: {where}. "
                          "Allow another folder with `medagent mcp --allow DIR` or $MEDAGENT_ALLOW.")
    if must_exist and not resolved.exists():
        raise PathRefused(f"{what} {path!r}: no such file or folder (looked at {resolved})")
    if resolved.is_dir():
        for link in _links_out(resolved, allowed):
            raise PathRefused(f"{what} {path!r} holds a link that leads outside the allowed folders: {link}; "
                              "medagent does not follow it")
    return resolved


def _links_out(folder: Path, allowed: list[Path]):
    for parent, dirs, files in os.walk(folder):  # links are not followed: each is checked where it lies
        for name in dirs + files:
            entry = Path(parent) / name
            if entry.is_symlink() and not any(entry.resolve().is_relative_to(a) for a in allowed):
                yield entry


def _redactor(folder: Path | None) -> Redactor:
    return Redactor.for_run(str(folder) if folder else None)


def _scrubbed(answer: Answer, redactor: Redactor) -> Answer:
    def deep(value):
        if isinstance(value, str):
            return redactor.scrub(value)
        if isinstance(value, list):
            return [deep(v) for v in value]
        if isinstance(value, dict):
            return {redactor.scrub(k) if isinstance(k, str) else k: deep(v) for k, v in value.items()}
        return value

    return Answer(redactor.scrub(answer.text), deep(answer.data), answer.images)


# ---------------------------------------------------------------------- the tools
def inspect_data(folder: str) -> Answer:
    """Describe a folder of medical images (NIfTI, DICOM series, nnU-Net/MSD/ACDC/M&Ms layouts): every case's
    shape, spacing, orientation and labels, the cardiac label convention, and the quality findings (flipped or
    swapped labels, misaligned pairs, empty masks, intensity-scale mixes), as text and as JSON."""
    from jupyter_medagent.agent.tools import inspection_text
    from jupyter_medagent.imaging.datacard import build_data_card
    from jupyter_medagent.judge.quantitative import check_dataset, dataset_convention

    root = confine(folder, "data folder")
    if not root.is_dir():
        raise PathRefused(f"data folder {folder!r} is a file; name the folder that holds the scans")
    redactor = _redactor(root)
    card = build_data_card(root)
    redactor.register_identifiers(card.identifiers)
    findings = [f.to_dict() for f in check_dataset(card)]
    convention = dataset_convention(card, findings)
    data = {"card": card.to_dict(), "findings": findings, "label_convention": convention, "data_dir": str(root)}
    return _scrubbed(Answer(inspection_text(card, findings, convention), data), redactor)


def check_pair(image: str, label: str, convention: str | None = None) -> Answer:
    """Judge one image/label-map pair quantitatively: alignment, orientation, label values and convention
    ('acdc' or 'mnms' for cardiac MRI), anatomical plausibility; the findings and the verdict ('ok' or 'flag')."""
    from jupyter_medagent.imaging.io import load_volume
    from jupyter_medagent.judge.quantitative import check_pair as judge_pair
    from jupyter_medagent.judge.quantitative import verdict_of

    if convention not in (None, "acdc", "mnms"):
        raise MedagentError(f"convention must be 'acdc' or 'mnms', not {convention!r}")
    image_path, label_path = confine(image, "image"), confine(label, "label map")
    redactor = _redactor(image_path.parent)
    findings = [f.to_dict() for f in judge_pair(load_volume(image_path, expect_ndim=3),
                                                load_volume(label_path, expect_ndim=3), label_path.name,
                                                convention=convention)]
    verdict = verdict_of(findings)
    lines = [f"Verdict: {verdict} ({len(findings)} finding(s)) for {image_path.name} with {label_path.name}"]
    lines += [f"- {f['kind']} ({f['severity']}): {f['message']}" for f in findings]
    return _scrubbed(Answer(quote_untrusted("\n".join(lines), "judge findings"),
                            {"image": str(image_path), "label": str(label_path), "verdict": verdict,
                             "findings": findings}), redactor)


def render(image: str, label: str | None = None, prediction: str | None = None, title: str | None = None,
           max_width: int = 768) -> Answer:
    """Render slices of a 3D image with the reference label map's contours (solid) and a prediction's (dashed),
    letters marking the patient directions: look at an overlay before trusting a number. One PNG, at most
    ``max_width`` pixels wide (up to 1024)."""
    from jupyter_medagent.imaging.io import load_volume
    from jupyter_medagent.imaging.render import render_montage

    if not 64 <= max_width <= RENDER_MAX_WIDTH:
        raise MedagentError(f"max_width must be between 64 and {RENDER_MAX_WIDTH} pixels, not {max_width}")
    image_path = confine(image, "image")
    redactor = _redactor(image_path.parent)
    volumes = {name: load_volume(confine(path, name.replace("_", " ")), expect_ndim=3)
               for name, path in (("label", label), ("prediction", prediction)) if path}
    montage = render_montage(load_volume(image_path, expect_ndim=3), volumes.get("label"), volumes.get("prediction"),
                             title=redactor.scrub(title or image_path.name), max_width=max_width)
    shown = ", ".join(["the image"] + [f"the {n}'s contours" for n in volumes])
    return _scrubbed(Answer(f"Rendered {shown} of {image_path.name}: {montage.width}x{montage.height} px.",
                            {"width": montage.width, "height": montage.height}, [montage.png]), redactor)


def propose_plan(request: str, folder: str) -> Answer:
    """The offline planner's plan for a plain-language request on a data folder: the task it reads, the
    preprocessing, network and training settings sized for this machine, and every step's code, as advice to
    adopt, change or ignore."""
    from jupyter_medagent.agent.skills import proposal_text
    from jupyter_medagent.imaging.datacard import build_data_card
    from jupyter_medagent.judge.quantitative import check_dataset, dataset_convention
    from jupyter_medagent.plan import PlanFailed, make_plan, parse_request
    from jupyter_medagent.plan.compute import compute_fingerprint

    root = confine(folder, "data folder")
    redactor = _redactor(root)
    card = build_data_card(root)
    redactor.register_identifiers(card.identifiers)
    findings = [f.to_dict() for f in check_dataset(card)]
    try:
        plan = make_plan(card.to_dict(), parse_request(request), compute_fingerprint(), data_dir=str(root),
                         convention=dataset_convention(card, findings), findings=findings)
    except PlanFailed as exc:
        raise MedagentError(f"the offline planner has no plan for this request on {folder}: {exc}") from exc
    return _scrubbed(Answer(quote_untrusted(proposal_text(plan), "proposed plan"),
                            {"plan": plan.to_dict(), "cells": plan.cells()}), redactor)


def toolkit_reference(module: str | None = None, name: str | None = None) -> Answer:
    """jupyter_medagent's Python toolkit (loaders, resampling, metrics, rendering, training helpers) that notebook
    code can import: an index of its modules, one module's functions with signatures, or one name's docstring."""
    from jupyter_medagent.agent.skills import toolkit_reference as reference

    try:
        return Answer(reference(module, name))
    except LookupError as exc:
        raise MedagentError(str(exc)) from exc


def solve(request: str, folder: str, notebook: str | None = None) -> Answer:
    """Run the whole offline medagent agent on a request and a data folder: it inspects the data, plans, writes
    and runs the notebook's cells in a sandboxed kernel, judges the results, repairs what fails and re-runs the
    notebook top to bottom. Answers the outcome, the headline numbers and the refined notebook's path
    (default: next to the data folder, named after it). Takes minutes when it trains a model."""
    from jupyter_medagent.contracts.options import RunOptions
    from jupyter_medagent.notebook.headline import headline_text
    from jupyter_medagent.session import RunSetup, run_session

    root = confine(folder, "data folder")
    if notebook is None:
        beside = root.parent / f"{root.name}-medagent.ipynb"
        inside = [a for a in allowed_folders() if beside.parent.is_relative_to(a)]
        notebook = str(beside if inside else root / "medagent.ipynb")
    target = confine(notebook, "notebook", must_exist=False)
    if target.suffix != ".ipynb":
        raise MedagentError(f"notebook {notebook!r} must end in .ipynb")
    if not target.parent.is_dir():
        raise MedagentError(f"notebook {notebook!r}: its folder {target.parent} does not exist")
    summary, _ = run_session(RunSetup(request, str(root), target.parent, str(target), RunOptions(backend="offline")),
                         quiet=True)
    lines = [f"Status: {summary['status']} — {summary['reason']}", f"Verified: {summary['verified']}",
             f"Notebook: {summary['notebook']}"]
    if summary.get("headline"):
        lines += ["", headline_text(summary["headline"])]
    if summary.get("summary"):
        lines += ["", summary["summary"]]
    data = {k: summary[k] for k in ("status", "reason", "summary", "verified", "notebook", "headline", "metrics",
                                    "steps", "seconds", "repairs")}
    return _scrubbed(Answer("\n".join(lines), json.loads(json.dumps(data, default=str))), _redactor(root))


TOOLS = (inspect_data, check_pair, render, propose_plan, toolkit_reference, solve)
