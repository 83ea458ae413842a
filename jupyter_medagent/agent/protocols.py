"""The three seams of the agent: backend, executor, judge.

The loop (``agent/loop.py``) only talks to these protocols, so a scripted test
backend, the offline planner and real LLM clients are interchangeable, and so
are the in-process and kernel-client executors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from collections.abc import Callable


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
    runs. An executor with ``inline = True`` runs cells in the caller's thread (the magic's, in the user's
    own process); the others may be called from a worker thread."""

    def execute(self, code: str, timeout: float | None = None,
                on_output: Callable[[list[dict[str, Any]]], None] | None = None) -> ExecutionResult: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


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


@runtime_checkable
class Backend(Protocol):
    """Chooses the next turn. A backend with ``streams = True`` is called with ``on_text``,
    to which it passes narration as it arrives (the loop shows it live as MessageDelta events)."""

    name: str
    model: str

    def next_turn(self, view: AgentView) -> ModelTurn: ...


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
