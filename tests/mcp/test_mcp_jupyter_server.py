"""Jupyter AI's MCP server (jupyter-server-mcp, beside a real Jupyter server) serves medagent's tools over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("jupyter_server_mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from jupyter_medagent.synth.replicas import synth_cardiac  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter_with_mcp(tmp_path):
    """`jupyter server` rooted at tmp_path/root with jupyter-server-mcp on a port of its own: the /mcp URL."""
    root, runtime = tmp_path / "root", tmp_path / "runtime"
    root.mkdir()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
    env.pop("MEDAGENT_ALLOW", None)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", f"--ServerApp.root_dir={root}",
         "--allow-root", "--IdentityProvider.token=", f"--MCPExtensionApp.mcp_port={free_port()}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"), start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not list(runtime.glob("jpserver-mcp-*.json")):
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        info = json.loads(next(runtime.glob("jpserver-mcp-*.json")).read_text())
        yield root, info["url"], f"http://127.0.0.1:{port}"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def test_medagents_tools_are_listed_and_callable_over_jupyters_mcp_endpoint(jupyter_with_mcp, tmp_path):
    root, url, _ = jupyter_with_mcp
    synth_cardiac(root / "cine", cases=2, seed=1, pitfalls=["orientation_flip"])
    synth_cardiac(tmp_path / "elsewhere", cases=1, seed=2)

    async def session():
        async with streamable_http_client(url) as (read, write, _), ClientSession(read, write) as client:
            await client.initialize()
            tools = {t.name: t for t in (await client.list_tools()).tools}
            inspected = await client.call_tool("inspect_data", {"folder": "cine"})
            outside = await client.call_tool("inspect_data", {"folder": str(tmp_path / "elsewhere")})
            reference = await client.call_tool("toolkit_reference", {})
            return tools, inspected, outside, reference

    tools, inspected, outside, reference = asyncio.run(session())
    assert {"inspect_data", "check_pair", "render", "propose_plan", "toolkit_reference", "solve"} <= set(tools)
    assert tools["check_pair"].inputSchema["required"] == ["image", "label"]
    assert not inspected.isError and "orientation_flip" in inspected.content[0].text
    # By default the tools may use the Jupyter server's root folder only.
    assert outside.isError and "outside the folders medagent may use" in outside.content[0].text
    assert str(root.resolve()) in outside.content[0].text
    assert "jupyter_medagent.imaging" in reference.content[0].text


@pytest.mark.slow
def test_solve_runs_inside_the_jupyter_server_without_holding_it_up(jupyter_with_mcp):
    import httpx

    root, url, jupyter = jupyter_with_mcp
    synth_cardiac(root / "cine", cases=2, seed=1)
    request = "Compute the LV volumes and ejection fraction of each patient from the given labels."

    async def session():
        async with streamable_http_client(url) as (read, write, _), ClientSession(read, write) as client, \
                httpx.AsyncClient() as http:
            await client.initialize()
            solving = asyncio.ensure_future(client.call_tool("solve", {"request": request, "folder": "cine"}))
            waits = []
            while not solving.done() and len(waits) < 600:
                asked = time.monotonic()
                assert (await http.get(f"{jupyter}/api/status", timeout=10)).status_code == 200
                waits.append(time.monotonic() - asked)
                await asyncio.sleep(0.5)
            return await solving, waits

    solved, waits = asyncio.run(session())
    assert not solved.isError, solved.content[0].text
    assert "Status: solved" in solved.content[0].text and (root / "cine-medagent.ipynb").exists()
    # The server answered all along (a tool run on its event loop would hold every request for the whole run);
    # the median, not the maximum, is held to a second: on a loaded machine one answer may wait for a CPU.
    assert len(waits) > 5 and sorted(waits)[len(waits) // 2] < 1.0 and max(waits) < 5.0, waits
