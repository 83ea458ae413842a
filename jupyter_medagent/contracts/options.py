"""Run options: every setting a user may give a run, each written once (name, type, default, choices, help).

The front doors are generated from ``RunOptions``: the CLI's and the ``%%medagent`` magic's flags and the Jupyter
AI persona's (``add_arguments`` / ``from_arguments``), the server's request body (``from_json``) and the sidebar's
settings schema, ``labextension/schema/plugin.json`` (``settings_schema``; ``scripts/settings_schema.py`` writes
it). What a run works on (the request, the data folder, where its notebook goes) is each front door's own.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from jupyter_medagent.contracts.errors import ConfigError

SAFETY_MODES = ("enforce", "approve", "off")
ISOLATION_MODES = ("auto", "sandbox", "guard", "off")
SKILL_LEVELS = ("none", "reference", "all")
ON_KERNEL_DEATH = ("fail", "restart")
ACCEPT_ITEM = re.compile(r"\s*(\w+)\s*(>=|<=)\s*([-+0-9.eE]+)\s*")


def option(default: Any, help: str, *, title: str, choices: tuple[str, ...] | None = None,
           metavar: str | None = None) -> Any:
    """A field of ``RunOptions`` with what every front door shows of it."""
    metadata = {"help": help, "title": title, "choices": choices, "metavar": metavar}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class RunOptions:
    backend: str | None = option(
        None, "offline (default), anthropic:MODEL or openai:MODEL[@URL]; the config file may set another default",
        title="Backend", metavar="SELECTOR")
    vlm_judge: str | None = option(
        None, "also judge rendered slices with a vision-language model, e.g. anthropic:claude-sonnet-4-5",
        title="Vision-language judge", metavar="SELECTOR")
    max_steps: int = option(
        80, "budget in model turns (a reply with several tool calls is one turn)",
        title="Most model turns", metavar="N")
    max_cost: float | None = option(None, "money budget for model calls", title="Money budget (USD)", metavar="USD")
    accept: list[str] = option(
        [], "quality bar, e.g. 'dice_mean>=0.9' or 'ef_abs_error<=3' (repeatable)",
        title="Quality bar (METRIC>=X or METRIC<=X)", metavar="METRIC>=X")
    safety: str = option(
        "enforce", "enforce (default): refuse shell, network, installs and writes outside the output folder; "
        "approve: ask before every cell, showing the gate's concerns (the default for a model backend when the "
        "sandbox is unavailable); off: no static gate", title="Safety", choices=SAFETY_MODES)
    isolation: str = option(
        "auto", "auto (default): kernels run in a bubblewrap sandbox where it works, else behind the runtime guard; "
        "sandbox: insist on it; guard: the runtime guard only; off: neither", title="Isolation",
        choices=ISOLATION_MODES)
    cell_timeout: float | None = option(
        None, "interrupt a cell that runs longer than S seconds (default: no limit)",
        title="Cell time limit (s)", metavar="S")
    on_kernel_death: str = option(
        "fail", "fail (default): end the run; restart: a fresh kernel, the kept cells replayed",
        title="When the kernel dies", choices=ON_KERNEL_DEATH)
    kernel_memory: int | None = option(
        None, "address-space limit of the run's kernels in MB (default: 80% of the machine's memory; 0: none)",
        title="Kernel memory limit (MB)", metavar="MB")
    kernel_cpu: int | None = option(
        None, "processor-time limit of each kernel in seconds (default: 4 hours; 0: none)",
        title="Kernel CPU-time limit (s)", metavar="S")
    verify: bool = option(
        True, "re-run the refined notebook top to bottom at the end (--no-verify: skip it, and the notebook is marked "
        "'not verified')",
        title="Verify by re-running the notebook")
    skills: str = option(
        "all", "what a model backend gets besides the basic tools: all (default): toolkit_reference and "
        "propose_recipe (the offline planner's plan); reference: toolkit_reference only; none",
        title="Skills", choices=SKILL_LEVELS)
    kernel_gateway: str | None = option(
        None, "run the cells (and the verification re-run) in kernels of the Jupyter Kernel Gateway or Enterprise "
        "Gateway at URL; the data folder must be visible there at the same path", title="Kernel gateway", metavar="URL")

    def __post_init__(self) -> None:
        for spec in fields():
            value = getattr(self, spec.name)
            choices = spec.metadata["choices"]
            if choices and value not in choices:
                raise ConfigError(f"{spec.name} must be one of {', '.join(choices)}, not {value!r}")
        self.acceptance()  # a malformed quality bar is refused before any kernel starts

    def acceptance(self) -> dict[str, list]:
        """The quality bar as the task holds it: ``{"dice_mean": [">=", 0.9]}``."""
        bar = {}
        for item in self.accept:
            match = ACCEPT_ITEM.fullmatch(item)
            if not match:
                raise ConfigError(f"accept {item!r}: write it as METRIC>=NUMBER or METRIC<=NUMBER")
            bar[match[1]] = [match[2], float(match[3])]
        return bar


def fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(RunOptions)


def _kind(spec: dataclasses.Field) -> type:
    """bool, int, float, str or list: the option's type without ``None``."""
    hint = typing.get_type_hints(RunOptions)[spec.name]
    if isinstance(hint, types.UnionType):  # X | None
        hint = next(k for k in typing.get_args(hint) if k is not type(None))
    return typing.get_origin(hint) or hint


def _default(spec: dataclasses.Field) -> Any:
    return spec.default_factory() if spec.default is dataclasses.MISSING else spec.default


def flag(spec: dataclasses.Field) -> str:
    """``--max-steps``; a switch that is on by default is turned off by ``--no-NAME``."""
    name = spec.name.replace("_", "-")
    return f"--no-{name}" if _kind(spec) is bool and _default(spec) else f"--{name}"


# ------------------------------------------------------------------------------------ command-line front doors
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option as a flag (the CLI, the magic and the persona parse with it)."""
    for spec in fields():
        kind, default, meta = _kind(spec), _default(spec), spec.metadata
        shown = meta["help"].replace("%", "%%")  # argparse formats help with %
        if kind in (int, float) and default is not None:
            shown += " (default %(default)s)"
        if kind is bool:
            parser.add_argument(flag(spec), dest=spec.name, action="store_false" if default else "store_true",
                                help=shown)
        elif kind is list:
            parser.add_argument(flag(spec), dest=spec.name, action="append", default=None, metavar=meta["metavar"],
                                help=shown)
        else:
            parser.add_argument(flag(spec), dest=spec.name, type=kind, default=default, choices=meta["choices"],
                                metavar=meta["metavar"], help=shown)


def from_arguments(args: argparse.Namespace, **overrides: Any) -> RunOptions:
    """The options of a namespace parsed by a parser ``add_arguments`` filled; ``overrides`` win."""
    values = {spec.name: getattr(args, spec.name) for spec in fields()}
    values.update(overrides)
    if values["accept"] is None:
        values["accept"] = []
    return RunOptions(**values)


def usage() -> str:
    """One line naming every option, for a front door's help message."""
    words = []
    for spec in fields():
        meta = spec.metadata
        value = "|".join(meta["choices"]) if meta["choices"] else meta["metavar"]
        words.append(flag(spec) + (f" {value}" if value and _kind(spec) is not bool else ""))
    return ", ".join(words)


# ------------------------------------------------------------------------------------ the server's request body
def from_json(body: dict[str, Any]) -> RunOptions:
    """The options in a JSON request body (keys are the field names; absent, null or "" means the default).
    Raises ConfigError naming the field at fault."""
    values = {}
    for spec in fields():
        value = body.get(spec.name)
        if value is None or value == "":
            continue
        kind = _kind(spec)
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{spec.name} must be true or false, not {value!r}")
        elif kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{spec.name} must be a list of strings, not {value!r}")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ConfigError(f"{spec.name} must be a whole number, not {value!r}")
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(f"{spec.name} must be a whole number, not {value!r}") from None
        elif kind is float:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{spec.name} must be a number, not {value!r}") from None
        else:
            value = str(value).strip()
        values[spec.name] = value
    return RunOptions(**values)


def to_json(options: RunOptions) -> dict[str, Any]:
    return dataclasses.asdict(options)


# ------------------------------------------------------------------------------------ the sidebar's settings
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}


def settings_schema() -> dict[str, Any]:
    """The JupyterLab settings schema of the sidebar (``labextension/schema/plugin.json``): one property per
    option, so the sidebar's choices persist and its form shows every option."""
    properties = {}
    for spec in fields():
        kind, default, meta = _kind(spec), _default(spec), spec.metadata
        prop: dict[str, Any] = {"title": meta["title"], "description": meta["help"],
                                "type": JSON_TYPES[kind] if default is not None else [JSON_TYPES[kind], "null"]}
        if kind is list:
            prop["items"] = {"type": "string"}
        if meta["choices"]:
            prop["enum"] = list(meta["choices"])
        prop["default"] = default
        properties[spec.name] = prop
    return {
        "title": "MedAgent",
        "description": "Run options of the MedAgent sidebar. Generated from jupyter_medagent/contracts/options.py "
                       "by scripts/settings_schema.py: edit that file, not this one.",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
