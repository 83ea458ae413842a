"""A real Jupyter server (pytest-jupyter) with the MedAgent extension, real kernels, scripted backends."""

from __future__ import annotations

import asyncio
import json

import pytest



@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"jupyter_medagent": True}}}


@pytest.fixture
def scripted(monkeypatch):
    """Make the server build ScriptedBackends: ``scripted({"script-a": [turns...]})``, selected by name."""
    from tests.agent.conftest import ScriptedBackend

    import jupyter_medagent.backends as backends

    scripts = {}
    real = backends.make_backend

    def make(selector=None, config=None):
        if selector in scripts:
            return ScriptedBackend(scripts[selector])
        return real(selector, config)

    monkeypatch.setattr(backends, "make_backend", make)
    return scripts.update


@pytest.fixture
def sandbox_kernelspec(jp_data_dir):
    """"Python 3 (medagent sandbox)" installed where the test server looks for kernels (needs bubblewrap)."""
    from jupyter_medagent.isolation import sandbox_problem
    from jupyter_medagent.isolation.kernelspec import SPEC_NAME, install

    if sandbox_problem():
        pytest.skip(sandbox_problem())
    install(user=True)
    return SPEC_NAME


@pytest.fixture
def api(jp_fetch):
    async def call(*path, body=None, method=None, **params):
        response = await jp_fetch("medagent", *path, method=method or ("POST" if body is not None else "GET"),
                                  body=json.dumps(body) if body is not None and not isinstance(body, str) else body,
                                  params=params or None, raise_error=False, request_timeout=60)
        return response.code, json.loads(response.body or b"{}") if response.headers.get(
            "Content-Type", "").startswith("application/json") else response.body.decode()

    return call


@pytest.fixture
def kernel(jp_fetch, jp_root_dir):
    started = []

    async def start(name="python3"):
        response = await jp_fetch("api", "kernels", method="POST", body=json.dumps({"name": name}))
        started.append(json.loads(response.body)["id"])
        return started[-1]

    return start


async def events_until(api, run_id, kind, timeout=60.0, after=0):
    """Long-poll from event ``after`` until an event of ``kind`` arrives; returns the events read."""
    events = []
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        code, reply = await api("runs", run_id, "events", after=str(after), wait="5")
        assert code == 200, reply
        events += reply["events"]
        after = reply["next"]
        if any(e["kind"] == kind for e in reply["events"]) or reply["done"]:
            return events
    raise AssertionError(f"no {kind} event within {timeout} s: {[e['kind'] for e in events]}")
