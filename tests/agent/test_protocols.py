"""The seams are contracts: a backend or executor that lacks a member its protocol declares is refused when
the agent is built, by name, instead of failing mid-run; what the project ships satisfies them."""

from __future__ import annotations

import threading
import time

import pytest

from jupyter_medagent.agent.loop import Agent
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.contracts.background import in_background
from jupyter_medagent.contracts.protocols import (Backend, BackendBase, ExecutionResult, Executor, ExecutorBase,
                                                  ModelTurn, require)


class Quiet(ExecutorBase):
    def execute(self, code, timeout=None, on_output=None):
        return ExecutionResult([], None, 0.0)

    def interrupt(self):
        pass

    def close(self):
        pass


class Bare:
    """A backend written before streaming, notices and repair logs were declared."""

    name, model = "bare", "bare-1"

    def next_turn(self, view, on_text=None):
        return ModelTurn()


def test_an_agent_refuses_a_backend_that_lacks_a_declared_capability(tmp_path):
    with pytest.raises(TypeError) as refused:
        Agent(Task("anything", None, str(tmp_path)), Bare(), Quiet())
    message = str(refused.value)
    assert "Bare does not satisfy Backend" in message
    for member in ("fixes", "model_written", "notice", "plan", "repairs", "streams"):
        assert member in message
    assert "BackendBase" in message


def test_an_agent_refuses_an_executor_that_cannot_interrupt(tmp_path):
    class NoInterrupt(ExecutorBase):
        def execute(self, code, timeout=None, on_output=None):
            return ExecutionResult([], None, 0.0)

        def close(self):
            pass

    class Complete(BackendBase, Bare):
        pass

    with pytest.raises(TypeError, match=r"NoInterrupt does not satisfy Executor: it lacks interrupt"):
        Agent(Task("anything", None, str(tmp_path)), Complete(), NoInterrupt())


def test_the_shipped_backends_and_executors_declare_every_member():
    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_medagent.backends.anthropic_api import AnthropicBackend
    from jupyter_medagent.backends.offline import OfflineBackend
    from jupyter_medagent.backends.openai_api import OpenAIBackend
    from jupyter_medagent.kernel import InProcessExecutor, KernelClientExecutor

    for backend in (OfflineBackend(), AnthropicBackend("claude-test", api_key="unused"),
                    OpenAIBackend("gpt-test", api_key="unused")):
        require(backend, Backend)
    assert OfflineBackend().model_written is False and AnthropicBackend("m", api_key="k").model_written is True
    require(InProcessExecutor(shell=InteractiveShell.instance()), Executor)
    for member in ("execute", "interrupt", "close", "restart", "restart_and_replay", "inline", "can_restart"):
        assert hasattr(KernelClientExecutor, member)  # can_restart is a property: true for a kernel of its own


def test_a_background_call_is_abandoned_on_stop_and_its_error_reaches_the_caller():
    release = threading.Event()
    started = time.monotonic()
    calls = in_background(lambda report: release.wait(30), lambda item: [], name="test-blocked",
                          stopped=lambda: time.monotonic() - started > 0.5)
    with pytest.raises(StopIteration) as done:
        next(calls)
    assert done.value.value is None and time.monotonic() - started < 5
    release.set()

    def fails(report):
        report("first")
        raise ValueError("the model call broke")

    seen = []
    with pytest.raises(ValueError, match="the model call broke"):
        for event in in_background(fails, lambda item: [item], name="test-fails"):
            seen.append(event)
    assert seen == ["first"]
