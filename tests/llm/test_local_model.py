"""Opt-in: the OpenAI-compatible backend against a real local model (llama.cpp's server).

    scripts/local-llm.sh            # builds llama-cpp-python[server] once (~5.5 min), serves SmolLM2-135M
    MEDAGENT_LLM_URL=http://127.0.0.1:8090/v1 .venv/bin/python -m pytest -m llm tests/llm

The 135M model cannot solve the task. What is asserted is what a user relies on with any weak
model: the run ends by itself within its budget, says honestly that it failed, and keeps a
notebook of whatever it wrote.
"""

from __future__ import annotations

import os
import time

import nbformat
import pytest

from jupyter_medagent.contracts.budget import Budget
from jupyter_medagent.agent.loop import Agent
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.backends import make_backend
from jupyter_medagent.kernel import KernelClientExecutor
from jupyter_medagent.safety import safety_for

pytestmark = [pytest.mark.llm, pytest.mark.skipif(not os.environ.get("MEDAGENT_LLM_URL"),
                                                  reason="set MEDAGENT_LLM_URL to a local OpenAI-compatible server")]


def test_a_tiny_local_model_ends_cleanly_with_an_honest_failure(tmp_path, phantom_clean):
    data, _ = phantom_clean
    backend = make_backend(f"openai:{os.environ.get('MEDAGENT_LLM_MODEL', 'smollm2')}@{os.environ['MEDAGENT_LLM_URL']}",
                           config={"openai": {"max_tokens": 400, "timeout": 120, "max_retries": 1}})
    gate, _ = safety_for("enforce", output_dir=tmp_path, cwd=tmp_path, data_dir=str(data))
    executor = KernelClientExecutor(cwd=tmp_path)
    started = time.monotonic()
    try:
        agent = Agent(Task("Segment the LV, myocardium and RV in these cine MRIs.", str(data), str(tmp_path),
                           {"dice_mean": [">=", 0.9]}), backend, executor, budget=Budget(max_steps=8, max_seconds=600),
                      safety=gate, notebook_path=tmp_path / "smol.ipynb", reexecute=False)
        events = list(agent.run())
    finally:
        executor.close()
    finished = events[-1]
    print(f"\n{finished.status}: {finished.reason} ({len(agent.history)} steps, {time.monotonic() - started:.0f} s, "
          f"{agent.tokens} tokens, cells {len(agent.draft.cells)})")
    assert finished.kind == "finished" and finished.status == "failed"
    assert finished.reason and "backend failed" not in finished.reason  # the model failed, not our requests
    assert len(agent.history) <= 8 and time.monotonic() - started < 600
    if agent.draft.cells:
        assert nbformat.read(tmp_path / "smol.ipynb", 4).cells  # a partial notebook, readable
