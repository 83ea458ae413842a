"""Runs on kernels served by a Jupyter Kernel Gateway started on 127.0.0.1 by the test: the CLI's
``--kernel-gateway URL``, and a Jupyter server started with a gateway URL (JupyterLab's ``--gateway-url``),
where approvals and Stop must work as with local kernels."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.agent.conftest import call

from .conftest import events_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A Jupyter Kernel Gateway on a free loopback port; yields (url, path of its log)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    with open(log, "w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "kernel_gateway", "--ip=127.0.0.1", f"--port={port}"],
                                   stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api", timeout=2)
            break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"the kernel gateway did not start: {log.read_text()[-2000:]}")
    yield url, log
    process.terminate()
    process.wait(timeout=30)


def test_cli_runs_and_verifies_on_the_gateways_kernels(gateway, tmp_path):
    from jupyter_medagent.synth.replicas import synth_cardiac

    url, log = gateway
    synth_cardiac(tmp_path / "data", cases=3, seed=1)
    before = log.read_text().count("Kernel started")
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", "run",
                             "Compute the LV volumes and ejection fraction of each patient from the given labels.",
                             "--data", str(tmp_path / "data"), "--out", str(tmp_path / "nb.ipynb"), "--json",
                             "--kernel-gateway", url], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    summary = json.loads(result.stdout)
    assert result.returncode == 0, summary["reason"]
    assert summary["status"] == "solved" and summary["reexecuted_ok"] is True
    text = log.read_text()
    # Both the agent's kernel and the verification re-run's were the gateway's, and both were shut down.
    assert text.count("Kernel started") - before == 2
    assert text.count("Kernel shutdown") >= 2


def test_an_unreachable_gateway_is_a_one_line_error(tmp_path):
    (tmp_path / "data").mkdir()
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.cli", "run", "segment", "--data",
                             str(tmp_path / "data"), "--kernel-gateway", f"http://127.0.0.1:{_free_port()}"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the kernel gateway at http://127.0.0.1:" in result.stderr and result.stderr.count("\n") == 1


@pytest.fixture
def jp_server_config(gateway):
    return {"ServerApp": {"jpserver_extensions": {"jupyter_medagent": True}},
            "GatewayClient": {"url": gateway[0]}}


@pytest.fixture(autouse=True)
def fresh_gateway_client():
    """GatewayClient is a process-wide singleton: let no other test inherit this one's gateway URL."""
    from jupyter_server.gateway.gateway_client import GatewayClient

    GatewayClient.clear_instance()
    yield
    GatewayClient.clear_instance()


async def test_sidebar_runs_on_a_gateway_kernel_with_approvals_and_stop(api, kernel, scripted, jp_serverapp):
    assert type(jp_serverapp.kernel_manager).__name__ == "GatewayMappingKernelManager"
    scripted({"script-gw": [call("add_cell", source="import os\nwhere = os.getpid()\nprint('pid', where)", note="Where?"),
                            call("add_cell", source="import time\ntime.sleep(120)", note="A long training."),
                            call("finish", status="solved", summary="never")]})
    kernel_id = await kernel()
    code, reply = await api("runs", body={"request": "run on the gateway", "kernel_id": kernel_id,
                                          "notebook_path": "remote.ipynb", "backend": "script-gw", "mode": "approve"})
    assert code == 201, reply
    run_id = reply["run_id"]
    events = await events_until(api, run_id, "approval_request")
    assert events[-1]["cell_id"] == "c1"
    code, _ = await api("runs", run_id, "approval", body={"cell_id": "c1", "decision": "run"})
    assert code == 200
    events += await events_until(api, run_id, "approval_request", after=len(events))
    executed = [e for e in events if e["kind"] == "cell_executed"][0]
    assert executed["error"] is None and executed["outputs"][0]["text"].startswith("pid ")
    assert int(executed["outputs"][0]["text"].split()[1]) != __import__("os").getpid()
    await api("runs", run_id, "approval", body={"cell_id": "c2", "decision": "run"})
    await asyncio.sleep(2.0)
    started = time.monotonic()
    code, reply = await api("runs", run_id, "stop", body={})
    assert code == 200
    events += await events_until(api, run_id, "finished", timeout=30, after=len(events))
    assert time.monotonic() - started < 15
    assert events[-1]["status"] == "stopped"
    long_cell = [e for e in events if e["kind"] == "cell_executed"][-1]
    assert long_cell["error"]["ename"] == "KeyboardInterrupt"  # the gateway delivered the interrupt
