"""The OpenAI-compatible backend through the real ``openai`` SDK against a local Chat Completions server."""

from __future__ import annotations

import json

import pytest

from jupyter_medagent.agent.loop import Agent
from jupyter_medagent.contracts.task import Task
from jupyter_medagent.backends import make_backend
from jupyter_medagent.backends.openai_api import OpenAIBackend
from jupyter_medagent.backends.pricing import PriceTable
from jupyter_medagent.contracts.errors import ConfigError

from .conftest import task_steps
from .wire import openai_error, openai_reply

PRICES = {"local-test": {"input": 1.0, "output": 2.0, "cache_read": 0.1}}


def backend(url, **options):
    return OpenAIBackend("local-test", api_key="not-needed", base_url=url + "/v1", prices=PriceTable.load(PRICES),
                         **options)


def test_solves_a_scripted_task_with_native_tools_images_and_cached_tokens(server, kernel, small_data, tmp_path):
    srv = server([openai_reply(tool=step, usage={"prompt_tokens": 1000, "completion_tokens": 50}, cached=600,
                               call_id=f"call_{i}") for i, step in enumerate(task_steps(str(small_data)))])
    agent = Agent(Task("count the scans", str(small_data), str(tmp_path)), backend(srv.url), kernel, reexecute=False)
    finished = list(agent.run())[-1]
    assert finished.status == "solved" and finished.metrics["n_files"] == 8
    last = srv.requests[-1]
    assert last["tools"][0]["type"] == "function" and last["messages"][0]["role"] == "system"
    answered = [m["tool_call_id"] for m in last["messages"] if m["role"] == "tool"]
    assert answered == ["call_0", "call_1", "call_2", "call_3"]
    pictures = [p for m in srv.requests[3]["messages"] if isinstance(m["content"], list) for p in m["content"]
                if p["type"] == "image_url"]
    assert len(pictures) == 1 and pictures[0]["image_url"]["url"].startswith("data:image/png;base64,")
    # prompt_tokens include the cached ones: 400 at the input price, 600 at the cache price.
    assert agent.cost_usd == pytest.approx(5 * (400 * 1.0 + 600 * 0.1 + 50 * 2.0) / 1e6)


def test_a_server_without_tools_or_images_gets_the_text_protocol(server, kernel, small_data, tmp_path):
    def no_tools(body):
        if "tools" in body:
            return openai_error(400, "tools are not supported by this model")
        if any(isinstance(m["content"], list) for m in body["messages"]):
            return openai_error(400, "image input is not supported")
        step = len([m for m in body["messages"] if m["role"] == "assistant"])
        name, args = task_steps(str(small_data))[step]
        return openai_reply(text="I will call a tool.\n```json\n" + json.dumps({"tool": name, "arguments": args}) + "\n```")

    srv = server([no_tools] * 12)
    b = backend(srv.url)
    agent = Agent(Task("count the scans", str(small_data), str(tmp_path)), b, kernel, reexecute=False)
    finished = list(agent.run())[-1]
    assert finished.status == "solved"
    assert b.native_tools is False and b.images is False
    assert "reply with exactly one JSON object" in srv.requests[-1]["messages"][0]["content"]
    # Told in words in the request right after the picture (images are sent with their own turn only).
    assert any("not shown (this server takes no images)" in str(m["content"]) for m in srv.requests[-2]["messages"])


def test_broken_arguments_are_told_to_the_model(server, kernel, tmp_path):
    srv = server([openai_reply(tool=("add_cell", {}), raw_arguments='{"source": "print(1)"'),
                  openai_reply(tool=("finish", {"status": "failed", "summary": "gave up"}))])
    finished = list(Agent(Task("x", None, str(tmp_path)), backend(srv.url), kernel).run())[-1]
    assert finished.status == "failed" and finished.reason == "gave up"
    told = [m for m in srv.requests[1]["messages"] if m["role"] == "tool"][0]["content"]
    assert told.startswith("ERROR: ") and "not valid JSON" in told


def test_a_reply_without_a_tool_call_is_replayed_as_text(server, kernel, tmp_path):
    srv = server([openai_reply(text="Hello! I am a helpful assistant."),
                  openai_reply(tool=("finish", {"status": "failed", "summary": "no tools used"}))])
    finished = list(Agent(Task("x", None, str(tmp_path)), backend(srv.url), kernel).run())[-1]
    assert finished.reason == "no tools used"
    replayed = srv.requests[1]["messages"][2:4]
    assert replayed[0] == {"role": "assistant", "content": "(your reply called no tool)"}
    assert replayed[1]["role"] == "user" and "contained no tool call" in replayed[1]["content"]


def test_rate_limit_is_retried_and_a_dead_server_is_named(server, kernel, tmp_path):
    srv = server([openai_error(429, "slow down", **{"retry-after-ms": "20"}),
                  openai_reply(tool=("finish", {"status": "failed", "summary": "done"}))])
    finished = list(Agent(Task("x", None, str(tmp_path)), backend(srv.url), kernel).run())[-1]
    assert len(srv.requests) == 2 and finished.reason == "done"
    dead = backend("http://127.0.0.1:9", max_retries=0)
    finished = list(Agent(Task("x", None, str(tmp_path)), dead, kernel).run())[-1]
    assert finished.status == "failed" and "cannot reach the OpenAI-compatible server at http://127.0.0.1:9/v1" in finished.reason


def test_selectors_keys_and_config_file(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    local = make_backend("openai:qwen2.5@http://127.0.0.1:8080/v1")
    assert (local.model, local.base_url, local.native_tools) == ("qwen2.5", "http://127.0.0.1:8080/v1", True)
    assert local.prices.price("qwen2.5") == {"input": 0.0, "output": 0.0} and local.notice is None  # local: free
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        make_backend("openai:gpt-5")  # the hosted API needs a key; local servers do not
    with pytest.raises(ConfigError, match="names no model"):
        make_backend("openai:")
    with pytest.raises(ConfigError, match="unknown backend 'gemini:pro'"):
        make_backend("gemini:pro")
    config = tmp_path / "medagent.toml"
    config.write_text('backend = "openai:llama@http://127.0.0.1:8081/v1"\n[openai]\ntools = false\nmax_tokens = 512\n'
                      '[prices."llama"]\ninput = 0.5\noutput = 0.5\n')
    monkeypatch.setenv("MEDAGENT_CONFIG", str(config))
    chosen = make_backend(None)
    assert (chosen.model, chosen.native_tools, chosen.max_tokens) == ("llama", False, 512)
    assert chosen.prices.price("llama") == {"input": 0.5, "output": 0.5}
    config.write_text("[openai]\ntemperature = 3\n")
    with pytest.raises(ConfigError, match="unknown option.*temperature"):
        make_backend("openai:x@http://127.0.0.1:1/v1")
