"""Benchmark suites: data files (TOML) shipped in ``bench/suites/``, or any path a user gives.

An agent suite lists tasks: how the task's data is made (a maker from ``bench/data.py`` and its
parameters), the request in up to four wordings, the run's step budget, and the judge's criteria
(``bench/judging.py``). A judge suite lists data sets of correct and deliberately broken pairs on which
each judge is scored. A malformed file is refused with an error naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from jupyter_medagent.bench.data import MAKERS
from jupyter_medagent.bench.judging import CRITERIA
from jupyter_medagent.contracts.errors import MedagentError

WORDINGS = ("expert", "ordinary", "vague", "misleading")
SUITE_KINDS = ("agent", "judge")


class SuiteError(MedagentError):
    """A suite file that cannot be used; the message names the file and the problem."""


@dataclass
class DataSpec:
    maker: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The maker and its parameters, readable: for reports, never for what a run's backend sees."""
        parts = [self.maker] + [f"{k}-{'_'.join(map(str, v)) if isinstance(v, list) else v}"
                                for k, v in sorted(self.params.items())]
        return "__".join(parts).replace("/", "_")

    @property
    def folder_name(self) -> str:
        """Data sets made alike share a folder, named by a hash of the maker and its parameters: the request
        a model reads carries the folder's path, and a name like ``pitfalls-orientation_flip`` would tell it
        what it has to find out from the data."""
        digest = hashlib.sha256(json.dumps([self.maker, self.params], sort_keys=True).encode()).hexdigest()[:12]
        return f"data-{digest}"


@dataclass
class TaskSpec:
    name: str
    about: str
    data: DataSpec
    wordings: dict[str, str]
    judge: dict[str, dict[str, Any]]
    max_steps: int = 60
    trains: bool = False  # the task trains a network: a Ray run asks for a GPU where the cluster has one


@dataclass
class Suite:
    name: str
    path: Path
    kind: str
    description: str
    tasks: list[TaskSpec] = field(default_factory=list)
    sets: list[DataSpec] = field(default_factory=list)  # judge suites: data sets with planted pitfalls


def suite_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).joinpath("suites").iterdir() if p.name.endswith(".toml"))


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name (``default``, ``judge``, ...) or a suite file by path."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" or path.exists()):
        shipped = resources.files(__package__).joinpath("suites").joinpath(f"{name_or_path}.toml")
        if not shipped.is_file():
            raise SuiteError(f"no suite named {name_or_path!r}; shipped suites: {', '.join(suite_names())} "
                             "(or give the path of a .toml suite file)")
        path = Path(str(shipped))
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError(f"{path}: no such suite file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SuiteError(f"{path}: not a readable TOML suite file ({exc})") from None
    return _parse(raw, path)


def _parse(raw: dict[str, Any], path: Path) -> Suite:
    def fail(where: str, problem: str):
        raise SuiteError(f"{path}: {where}: {problem}")

    _known_keys(raw, {"description", "kind", "tasks", "sets"}, "top level", fail)
    kind = raw.get("kind", "agent")
    if kind not in SUITE_KINDS:
        fail("kind", f"{kind!r} is not a suite kind; use {' or '.join(SUITE_KINDS)}")
    suite = Suite(path.stem, path, kind, str(raw.get("description", "")))
    if kind == "judge":
        sets = raw.get("sets")
        if not isinstance(sets, list) or not sets:
            fail("sets", "a judge suite needs at least one [[sets]] table (a data maker and its parameters)")
        suite.sets = [_data(s, f"sets[{i}]", fail) for i, s in enumerate(sets)]
        return suite
    tasks = raw.get("tasks")
    if not isinstance(tasks, dict) or not tasks:
        fail("tasks", "an agent suite needs at least one [tasks.NAME] table")
    for name, task in tasks.items():
        where = f"tasks.{name}"
        if not isinstance(task, dict):
            fail(where, "must be a table")
        _known_keys(task, {"about", "data", "wordings", "judge", "max_steps", "trains"}, where, fail)
        wordings = task.get("wordings")
        if not isinstance(wordings, dict) or not wordings:
            fail(f"{where}.wordings", f"give at least one wording ({', '.join(WORDINGS)})")
        for wording, text in wordings.items():
            if wording not in WORDINGS:
                fail(f"{where}.wordings.{wording}", f"unknown wording; use {', '.join(WORDINGS)}")
            if not isinstance(text, str) or not text.strip():
                fail(f"{where}.wordings.{wording}", "must be the request's text")
        judge = task.get("judge")
        if not isinstance(judge, dict) or not judge:
            fail(f"{where}.judge", f"give at least one criterion ({', '.join(CRITERIA)})")
        for criterion, params in judge.items():
            if criterion not in CRITERIA:
                fail(f"{where}.judge.{criterion}", f"unknown criterion; known: {', '.join(CRITERIA)}")
            _fits(CRITERIA[criterion], params, f"{where}.judge.{criterion}", fail, skip=2)
        max_steps = task.get("max_steps", 60)
        if not isinstance(max_steps, int) or max_steps < 1:
            fail(f"{where}.max_steps", "must be a positive whole number")
        suite.tasks.append(TaskSpec(name, str(task.get("about", "")), _data(task.get("data"), f"{where}.data", fail),
                                    dict(wordings), judge, max_steps, bool(task.get("trains", False))))
    return suite


def _data(table: Any, where: str, fail) -> DataSpec:
    if not isinstance(table, dict) or "maker" not in table:
        fail(where, f"needs a table with a maker ({', '.join(MAKERS)}) and its parameters")
    params = {k: v for k, v in table.items() if k != "maker"}
    if table["maker"] not in MAKERS:
        fail(f"{where}.maker", f"unknown data maker {table['maker']!r}; known: {', '.join(MAKERS)}")
    _fits(MAKERS[table["maker"]], params, where, fail, skip=1)
    return DataSpec(table["maker"], params)


def _fits(function, params: Any, where: str, fail, skip: int) -> None:
    """``params`` are keyword arguments ``function`` takes (after its first ``skip`` positional ones)."""
    if not isinstance(params, dict):
        fail(where, "must be a table of parameters")
    accepted = list(inspect.signature(function).parameters.values())[skip:]
    names = [p.name for p in accepted]
    unknown = [k for k in params if k not in names]
    if unknown:
        fail(where, f"unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(names) or 'none'}")
    missing = [p.name for p in accepted if p.default is inspect.Parameter.empty and p.name not in params]
    if missing:
        fail(where, f"missing parameter(s) {', '.join(missing)}")


def _known_keys(table: dict[str, Any], known: set[str], where: str, fail) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        fail(where, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
