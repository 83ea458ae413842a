"""The Anthropic backend through the real ``anthropic`` SDK against a local Messages-API server."""

from __future__ import annotations

import re
import time

import nbformat
import pytest

from jupyter_medagent.contracts.budget import Budget
from jupyter_medagent.agent.loop import Agent
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.backends import make_backend
from jupyter_medagent.backends.anthropic_api import AnthropicBackend
from jupyter_medagent.backends.pricing import PriceTable
from jupyter_medagent.contracts.errors import ConfigError

from .conftest import task_steps
from .wire import anthropic_error, anthropic_reply

PRICES = {"claude-test": {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.3}}


def backend(url, **options):
    return AnthropicBackend("claude-test", api_key="sk-test", base_url=url, prices=PriceTable.load(PRICES), **options)


def run(agent):
    events = list(agent.run())
    return events, events[-1]


def test_solves_a_scripted_task_with_tools_images_caching_and_cost(server, kernel, small_data, tmp_path):
    steps = task_steps(str(small_data))
    usages = [{"input_tokens": 1200, "output_tokens": 80, "cache_creation_input_tokens": 2000},
              *[{"input_tokens": 300, "output_tokens": 60, "cache_read_input_tokens": 2000}] * 4]
    srv = server([anthropic_reply(text=f"Step {i}: {name}.", tool=(name, args), usage=u, tool_id=f"toolu_{i}")
                  for i, ((name, args), u) in enumerate(zip(steps, usages))])
    agent = Agent(Task("count the scans", str(small_data), str(tmp_path)), backend(srv.url), kernel,
                  notebook_path=tmp_path / "run.ipynb", reexecute=False)
    events, finished = run(agent)

    assert finished.status == "solved" and finished.metrics["n_files"] == 8  # 2 patients x ED/ES x image/label
    sources = [c.source for c in nbformat.read(finished.notebook, 4).cells if c.cell_type == "code"]
    assert any("glob('*/*.nii.gz')" in s for s in sources)
    # Streaming: narration arrived in pieces before the whole message.
    deltas = [e.text for e in events if e.kind == "message_delta"]
    assert "".join(deltas[:2]) == "Step 0: inspect_data."
    # The stable prefix is marked for caching: tools+system, then the pinned data card.
    first, later = srv.requests[0], srv.requests[-1]
    assert first["system"][0]["cache_control"] == {"type": "ephemeral"}
    names = [t["name"] for t in first["tools"]]  # the default skills (toolkit_reference, propose_recipe) included
    assert names[0] == "inspect_data" and {"add_cell", "edit_cell", "run_cell", "finish", "toolkit_reference",
                                           "propose_recipe"} <= set(names)
    card = later["messages"][2]["content"][0]
    assert card["type"] == "tool_result" and card["tool_use_id"] == "toolu_0" and card["cache_control"]
    assert "untrusted-data" in card["content"][0]["text"]  # data text arrives quoted
    # Each result answers its call; the picture went to the model as an image block.
    ids = [m["content"][0].get("tool_use_id") for m in later["messages"] if m["role"] == "user"][1:]
    assert ids == ["toolu_0", "toolu_1", "toolu_2", "toolu_3"]
    images = [b for m in srv.requests[3]["messages"] for r in m["content"] if r.get("type") == "tool_result"
              for b in r["content"] if b["type"] == "image"]
    assert len(images) == 1 and images[0]["source"]["media_type"] == "image/png"
    # Cost: every token class priced (USD per million tokens).
    expected = (1200 * 3 + 80 * 15 + 2000 * 3.75 + 4 * (300 * 3 + 60 * 15 + 2000 * 0.3)) / 1e6
    assert agent.cost_usd == pytest.approx(expected)
    usage = [e for e in events if e.kind == "usage"]
    assert usage[-1].total_cost_usd == pytest.approx(expected) and usage[0].cache_write_tokens == 2000
    assert nbformat.read(finished.notebook, 4).metadata["medagent"]["cost_usd"] == pytest.approx(expected, abs=1e-6)


def test_rate_limit_and_overload_are_retried(server, kernel, tmp_path):
    srv = server([anthropic_error(429, "rate limited", **{"retry-after-ms": "20"}),
                  anthropic_error(529, "overloaded", **{"retry-after-ms": "20"}),
                  anthropic_reply(tool=("finish", {"status": "failed", "summary": "nothing to do"}))])
    agent = Agent(Task("nothing", None, str(tmp_path)), backend(srv.url), kernel, reexecute=False)
    _, finished = run(agent)
    assert len(srv.requests) == 3
    assert finished.status == "failed" and finished.reason == "nothing to do"


def test_a_server_that_never_answers_ends_the_run_with_a_clear_reason(server, kernel, tmp_path):
    from .wire import Reply

    srv = server([Reply(delay_s=5, body={})] * 3)
    agent = Agent(Task("nothing", None, str(tmp_path)), backend(srv.url, timeout=0.5, max_retries=1), kernel)
    started = time.monotonic()
    _, finished = run(agent)
    assert time.monotonic() - started < 4.5
    assert finished.status == "failed" and "did not answer in time" in finished.reason


def test_unreachable_server_and_missing_key_are_named(kernel, tmp_path, monkeypatch):
    agent = Agent(Task("nothing", None, str(tmp_path)), backend("http://127.0.0.1:9", max_retries=0), kernel)
    _, finished = run(agent)
    assert finished.status == "failed" and "cannot reach the Anthropic API at http://127.0.0.1:9" in finished.reason
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("MEDAGENT_CONFIG", str(tmp_path / "none.toml"))
    with pytest.raises(ConfigError, match="no such file"):
        make_backend("anthropic:claude-test")
    monkeypatch.delenv("MEDAGENT_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="set ANTHROPIC_API_KEY"):
        make_backend("anthropic:claude-test")


def test_malformed_replies_are_explained_then_the_run_ends_with_cells_kept(server, kernel, tmp_path):
    srv = server([anthropic_reply(tool=("add_cell", {"source": "x = 41 + 1\nprint(x)", "note": "A sum."})),
                  anthropic_reply(tool=("launch_rocket", {"where": "moon"})),
                  anthropic_reply(tool=("add_cell", {}), raw_json='{"source": "print(1)", "note": '),
                  anthropic_reply(text="I think the answer is 42. " * 5)])
    agent = Agent(Task("add numbers", None, str(tmp_path)), backend(srv.url), kernel,
                  notebook_path=tmp_path / "partial.ipynb", reexecute=False)
    events, finished = run(agent)
    assert finished.status == "failed" and "malformed 3 times" in finished.reason
    told = [r["content"][0]["content"][0]["text"] for r in srv.requests[3]["messages"][-3:-1]
            if r["role"] == "user" and r["content"][0].get("type") == "tool_result"]
    assert any("unknown tool 'launch_rocket'" in t for t in told)
    # The SDK repairs a cut-off JSON object as far as it can; what is still missing is named.
    assert "missing required argument(s): note" in srv.requests[3]["messages"][-1]["content"][0]["content"][0]["text"]
    # Every replayed call is one the API accepts: a turn without a tool call is replayed as text.
    later = srv.requests[-1]["messages"]
    names = [b["name"] for m in later for b in m["content"] if b.get("type") == "tool_use"]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", n) for n in names)
    cells = [c for c in nbformat.read(tmp_path / "partial.ipynb", 4).cells if c.cell_type == "code"]
    assert any("41 + 1" in c.source for c in cells)  # nothing the run made is lost


def test_the_money_budget_stops_before_a_call_that_could_pass_it(server, kernel, tmp_path):
    srv = server([anthropic_reply(tool=("list_variables", {}), usage={"input_tokens": 20_000, "output_tokens": 500})] * 5)
    agent = Agent(Task("spend", None, str(tmp_path)), backend(srv.url, max_tokens=1000), kernel,
                  budget=Budget(max_cost_usd=0.20))
    _, finished = run(agent)
    assert finished.status == "failed" and "money budget" in finished.reason
    assert agent.cost_usd <= 0.20
    assert 1 <= len(srv.requests) < 5


def test_stop_is_honoured_while_the_model_is_still_answering(server, kernel, tmp_path):
    import dataclasses
    import threading

    srv = server([dataclasses.replace(anthropic_reply(tool=("list_variables", {})), delay_s=4)])
    agent = Agent(Task("slow", None, str(tmp_path)), backend(srv.url), kernel)
    threading.Timer(0.5, agent.stop).start()
    started = time.monotonic()
    _, finished = run(agent)
    assert finished.status == "stopped" and time.monotonic() - started < 2.5
    assert len(srv.requests) == 1  # the call was under way, not refused or retried
