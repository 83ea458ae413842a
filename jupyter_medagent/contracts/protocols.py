"""The three seams of the agent: backend, executor, judge.

The loop (``agent/loop.py``) only talks to these protocols, so a scripted test
backend, the offline planner and real LLM clients are interchangeable, and so
are the in-process and kernel-client executors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from jupyter_medagent.contracts.errors import KernelDied


# --------------------------------------------------------------------------- executor
@dataclass
class ExecutionResult:
    """What running one cell gave, the same for every executor."""

    outputs: list[dict[str, Any]]  # nbformat v4 output dicts
    error: dict[str, Any] | None  # {"ename", "evalue", "traceback": [lines without ANSI codes]}
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Executor(Protocol):
    """Where code runs: the user's kernel, in-process or through jupyter_client.

    ``on_output`` is called with a copy of the outputs so far each time the cell produces one, while it
    runs. Every member is declared here; ``ExecutorBase`` gives the optional ones their defaults."""

    inline: bool  # cells run in the caller's thread (the magic's, in the user's own process); else any thread
    can_restart: bool  # ``restart`` can start a fresh kernel in place of a dead one

    def execute(self, code: str, timeout: float | None = None,
                on_output: Callable[[list[dict[str, Any]]], None] | None = None) -> ExecutionResult: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...

    def restart(self) -> None: ...

    def restart_and_replay(self, sources: Sequence[str],
                           timeout: float | None = None) -> tuple[int, ExecutionResult] | None: ...


class ExecutorBase:
    """The optional capabilities' defaults: a worker thread may call it, and its kernel cannot be restarted."""

    inline = False
    can_restart = False

    def restart(self) -> None:
        raise KernelDied("the kernel died and this executor cannot start a new one")

    def restart_and_replay(self, sources: Sequence[str],
                           timeout: float | None = None) -> tuple[int, ExecutionResult] | None:
        """A fresh kernel in place of a dead one, ``sources`` run again in order: the first that fails
        (its index and result), or None when all ran."""
        self.restart()
        for index, source in enumerate(sources):
            result = self.execute(source, timeout=timeout)  # type: ignore[attr-defined]
            if not result.ok:
                return index, result
        return None


# --------------------------------------------------------------------------- backend
@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str = ""


@dataclass
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class ModelTurn:
    """One reply of a backend: optional narration and the tool calls to carry out."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: TokenUsage = field(default_factory=TokenUsage)
    plan: list[str] = field(default_factory=list)  # steps the backend announces (shown as a Plan event)


@dataclass
class Observation:
    """What a tool call returned: text for the model, optional PNGs, structured data."""

    text: str
    images: list[bytes] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    is_error: bool = False


@dataclass
class Step:
    call: ToolCall
    observation: Observation
    turn: int | None = None  # the model's reply (1-based) that made this call; calls of one reply share it


@dataclass
class AgentView:
    """Everything a backend may look at when choosing its next turn."""

    task: str
    data_dir: str | None
    tools: list[dict[str, Any]]  # JSON tool schemas (prompts/tools.json)
    system_prompt: str
    history: list[Step]
    cells: list[dict[str, Any]]  # the draft notebook: id, source, note, status
    step: int  # turns taken so far: a turn is one model reply, however many tool calls it makes
    max_steps: int  # the budget in turns (Budget.max_steps)
    cost_usd: float = 0.0  # spent so far, judges included
    max_cost_usd: float | None = None  # a backend refuses a call that could pass it
    output_dir: str | None = None  # the run's own folder: the kernel's working directory, the only writable place
    relative_paths: bool = True  # data paths may be written relative to the notebook (see Task.relative_paths)
    tokens: int = 0  # spent so far (model and judges)
    max_tokens: int | None = None


class AnnouncedPlan(Protocol):
    """A plan a backend made ahead of its turns (the offline planner's ``plan.Plan``)."""

    def markdown(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class Backend(Protocol):
    """Chooses the next turn. Every member is declared here; ``BackendBase`` gives the optional ones
    their defaults."""

    name: str
    model: str
    streams: bool  # ``next_turn`` takes ``on_text``, to which it passes narration as it arrives (MessageDelta)
    model_written: bool  # a model writes the cells: they are untrusted, and the notebook says who wrote them
    notice: str | None  # said once at the start of the run (a model without a known price, say)
    plan: AnnouncedPlan | None  # the plan it works to, when it plans ahead (shown in the notebook)
    repairs: Sequence[dict[str, Any]]  # its repair log, {"cell", "rule", "error", "fix"}, growing as rules fire
    fixes: Sequence[dict[str, Any]]  # the judges' findings it fixed

    def next_turn(self, view: AgentView, on_text: Callable[[str], None] | None = None) -> ModelTurn: ...


class BackendBase:
    """The optional capabilities' defaults: a model that answers whole, plans nothing ahead, repairs nothing."""

    streams = False
    model_written = True
    notice: str | None = None
    plan: AnnouncedPlan | None = None
    repairs: Sequence[dict[str, Any]] = ()
    fixes: Sequence[dict[str, Any]] = ()


@runtime_checkable
class ReportsLaunchRefusal(Protocol):
    """A kernel manager whose launcher may refuse to start the kernel, and says why (isolation/sandbox.py)."""

    def launch_refusal(self) -> str | None: ...


def require(implementation: object, protocol: type) -> None:
    """Refuse, naming what is missing, an object that lacks a member ``protocol`` declares."""
    declared = {*protocol.__annotations__, *(name for name, value in vars(protocol).items()
                                            if callable(value) and not name.startswith("_"))}
    missing = sorted(name for name in declared if not hasattr(implementation, name))
    if missing:
        raise TypeError(f"{type(implementation).__name__} does not satisfy {protocol.__name__}: it lacks "
                        f"{', '.join(missing)} (declared in jupyter_medagent/contracts/protocols.py; inherit "
                        f"{protocol.__name__}Base for the optional ones' defaults)")


# --------------------------------------------------------------------------- judge
@dataclass
class JudgeVerdict:
    verdict: str  # "ok" or "flag"
    findings: list[dict[str, Any]]
    confidence: float | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)


@runtime_checkable
class Judge(Protocol):
    """Judges rendered montages plus the quantitative findings the cells reported."""

    name: str

    def judge(self, images: list[bytes], findings: list[dict[str, Any]], context: str) -> JudgeVerdict: ...
