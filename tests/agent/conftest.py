"""A scripted backend and a shared kernel, so the loop's branches can be forced in seconds."""

from __future__ import annotations

import pytest

from jupyter_medagent.contracts.protocols import BackendBase, ModelTurn, TokenUsage, ToolCall
from jupyter_medagent.kernel import KernelClientExecutor


class ScriptedBackend(BackendBase):
    """Replays turns; a callable turn receives the view (to react to what it sees)."""

    name = "scripted"
    model = "script-1"

    def __init__(self, turns):
        self.turns = list(turns)
        self.views = []

    def next_turn(self, view):
        self.views.append(view)
        if not self.turns:
            return ModelTurn(text="(script exhausted)")
        turn = self.turns.pop(0)
        turn = turn(view) if callable(turn) else turn
        if isinstance(turn, ToolCall):
            return ModelTurn(tool_calls=[turn])
        return turn


def call(name, **arguments):
    return ToolCall(name, arguments)


def priced(call_, tokens=1000, cost=0.01):
    return ModelTurn(tool_calls=[call_], usage=TokenUsage(tokens, 100, cost_usd=cost))


@pytest.fixture
def executor(tmp_path):
    ex = KernelClientExecutor(cwd=tmp_path)
    yield ex
    ex.close()
