"""Prompt tokens per step of a long run, as the Anthropic backend would send them.

A real offline run on a 10-patient phantom is recorded (its tool calls, observations and
montages), then its later working steps (edit, run, render, judge) are replayed until the run
is 48 steps long, the way a model that keeps iterating would. Each step's request is built by
the real request builder and its tokens estimated (about 3.5 characters per token, images by
width*height/750; no tokenizer can be fetched here). The cached part is everything up to the
last cache breakpoint (tools, system prompt, request, pinned data card). Baseline, same run:
the same history sent whole, without compaction.

Target: uncached prompt <= 12k tokens at step 40.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from jupyter_medagent.agent.context import compact_history
from jupyter_medagent.agent.loop import Agent, load_system_prompt
from jupyter_medagent.agent.protocols import AgentView
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.agent.tools import load_tool_schemas
from jupyter_medagent.backends import make_backend
from jupyter_medagent.backends.anthropic_api import AnthropicBackend
from jupyter_medagent.backends.conversation import estimate_tokens
from jupyter_medagent.synth.replicas import synth_cardiac
from jupyter_medagent.kernel import KernelClientExecutor

STEPS = 48
TARGET_STEP, TARGET_TOKENS = 40, 12_000


def record_run(tmp: Path):
    data = tmp / "data"
    synth_cardiac(data, cases=10, seed=4, pitfalls="all")
    executor = KernelClientExecutor(cwd=tmp)
    try:
        agent = Agent(Task("Segment LV, myocardium and RV and report the EF.", str(data), str(tmp)),
                      make_backend("offline:steps=60,epochs=2"), executor, reexecute=False)
        for _ in agent.run():
            pass
    finally:
        executor.close()
    return agent.history, str(data)


def split_tokens(request: dict) -> tuple[int, int]:
    """(cached prefix, rest): the prefix ends at the last block marked with cache_control."""
    cached = estimate_tokens({"tools": request["tools"], "system": request["system"]})
    messages = request["messages"]
    marked = [i for i, m in enumerate(messages) if any("cache_control" in b for b in m["content"])]
    if marked:
        cached += estimate_tokens(messages[: marked[-1] + 1])
    return cached, estimate_tokens(request) - cached


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        recorded, data = record_run(Path(tmp))
    working = [s for s in recorded if s.call.name in ("add_cell", "edit_cell", "render", "judge", "run_cell")][-10:]
    history = list(recorded)
    while len(history) < STEPS:
        history.append(working[len(history) % len(working)])
    print(f"recorded {len(recorded)} real steps; replayed to {len(history)} with its last {len(working)} working steps")
    backend = AnthropicBackend("claude-sonnet-4-5", api_key="unused")  # only builds requests, never calls
    tools = load_tool_schemas()
    system = load_system_prompt([t["name"] for t in tools])
    print(f"{'step':>4s} {'cached':>7s} {'uncached':>8s} {'total':>7s} {'no-compaction total':>20s}")
    at_target = None
    for step in range(1, len(history) + 1):
        view = AgentView("Segment LV, myocardium and RV and report the EF.", data, tools, system,
                         compact_history(history[:step]), [], step, 80)
        cached, rest = split_tokens(backend.request(view))
        whole = estimate_tokens(backend.request(AgentView(view.task, data, tools, system, history[:step], [], step, 80)))
        if step == TARGET_STEP:
            at_target = (rest, whole)
        if step % 4 == 0 or step == 1:
            print(f"{step:4d} {cached:7d} {rest:8d} {cached + rest:7d} {whole:20d}")
    rest, whole = at_target
    verdict = "met" if rest <= TARGET_TOKENS else "NOT met"
    print(f"\nstep {TARGET_STEP}: {rest} uncached prompt tokens (target <= {TARGET_TOKENS}: {verdict}); "
          f"whole history would be {whole} tokens ({whole / max(rest, 1):.1f}x)")
    return 0 if rest <= TARGET_TOKENS else 1


if __name__ == "__main__":
    sys.exit(main())
