"""The /medagent/ endpoints on a real server: start, stream, approve, stop, concurrent runs, bad requests."""

from __future__ import annotations

import asyncio
import time

import nbformat
import pytest

from tests.agent.conftest import call

from .conftest import events_until



def start_body(kernel_id, backend, **extra):
    return {"request": "compute something", "kernel_id": kernel_id, "notebook_path": "analysis.ipynb",
            "backend": backend, **extra}


async def test_a_run_streams_its_events_and_leaves_a_refined_notebook(api, kernel, scripted, jp_root_dir,
                                                                      sandbox_kernelspec):
    scripted({"script-a": [call("add_cell", source="answer = 6 * 7\nprint(answer)", note="Compute the answer."),
                           call("finish", status="solved", summary="the answer is 42")]})
    kernel_id = await kernel(sandbox_kernelspec)
    code, reply = await api("runs", body=start_body(kernel_id, "script-a"))
    assert code == 201 and reply["status"] == "running", reply
    events = await events_until(api, reply["run_id"], "finished")
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["cell_written", "cell_executed"] and kinds[-1] == "finished", events[:2]
    assert [e["seq"] for e in events] == list(range(len(events)))
    executed = events[1]
    assert executed["error"] is None and executed["outputs"][0]["text"] == "42\n"
    finished = events[-1]
    assert finished["status"] == "solved" and finished["reexecuted_ok"] is True
    # The refined notebook sits next to the user's, named after it, and the API gives its server path.
    code, summary = await api("runs", reply["run_id"])
    assert summary["status"] == "solved" and summary["notebook"] == "analysis-medagent.ipynb"
    code, exported = await api("runs", reply["run_id"], "notebook")
    assert code == 200 and exported["final"] is True
    assert any("6 * 7" in c["source"] for c in exported["notebook"]["cells"])
    assert nbformat.read(jp_root_dir / "analysis-medagent.ipynb", 4).metadata["medagent"]["status"] == "solved"
    # The same events as server-sent events.
    code, stream = await api("runs", reply["run_id"], "stream")
    assert code == 200 and stream.count("event: ") == len(events) and "event: finished" in stream


async def test_cells_run_in_the_notebooks_own_kernel(api, kernel, scripted, jp_fetch, sandbox_kernelspec):
    """The user's variables are the agent's: the run reads one the user set, and leaves one behind. A model
    backend's cells run in the notebook's kernel only when it is the sandbox kernel."""
    kernel_id = await kernel(sandbox_kernelspec)
    scripted({"script-set": [call("add_cell", source="user_value = 5", note="(the user's cell)"),
                             call("finish", status="failed", summary="setup")],
              "script-use": [call("add_cell", source="print(user_value * 2)\nagent_value = 1", note="Use it."),
                             call("finish", status="failed", summary="read it")]})
    for script in ("script-set", "script-use"):
        code, reply = await api("runs", body=start_body(kernel_id, script))
        assert code == 201, reply
        events = await events_until(api, reply["run_id"], "finished")
        for _ in range(60):  # the run lets go of the kernel just after its last event
            if (await api("runs", reply["run_id"], "notebook"))[1].get("final"):
                break
            await asyncio.sleep(0.5)
    executed = next(e for e in events if e["kind"] == "cell_executed")
    assert executed["outputs"][0]["text"] == "10\n"


async def test_a_model_backend_on_a_plain_notebook_kernel_runs_its_cells_in_a_kernel_of_its_own(api, kernel, scripted):
    """The notebook's plain kernel never runs a model's cell: the run's cells see none of its variables and
    run under the launcher's seccomp filter (NoNewPrivs 1), where the plain kernel has none."""
    kernel_id = await kernel()
    probe = ("status = dict(l.rstrip('\\n').split(':\\t', 1) for l in open('/proc/self/status') if ':\\t' in l)\n"
             "print(status['NoNewPrivs'], 'user_value' in globals())")
    scripted({"script-set": [call("add_cell", source="user_value = 5", note="(the user's cell)"),
                             call("finish", status="failed", summary="setup")],
              "script-probe": [call("add_cell", source=probe, note="Where am I?"),
                               call("finish", status="failed", summary="probed")]})
    for script in ("script-set", "script-probe"):
        code, reply = await api("runs", body=start_body(kernel_id, script))
        assert code == 201, reply
        events = await events_until(api, reply["run_id"], "finished")
        for _ in range(60):
            if (await api("runs", reply["run_id"], "notebook"))[1].get("final"):
                break
            await asyncio.sleep(0.5)
    executed = next(e for e in events if e["kind"] == "cell_executed")
    assert executed["outputs"] and executed["outputs"][0].get("text") == "1 False\n", executed
    assert any("not in this notebook's kernel" in e.get("text", "") for e in events if e["kind"] == "message")


async def test_approve_mode_waits_for_the_user(api, kernel, scripted):
    scripted({"script-b": [call("add_cell", source="x = 1", note="First."),
                           call("add_cell", source="import subprocess", note="Second."),
                           call("add_cell", source="print('never')", note="Third."),
                           call("finish", status="failed", summary="unreachable")]})
    kernel_id = await kernel()
    code, reply = await api("runs", body=start_body(kernel_id, "script-b", mode="approve"))
    run_id = reply["run_id"]
    events = await events_until(api, run_id, "approval_request")
    assert events[-1]["cell_id"] == "c1" and events[-1]["source"] == "x = 1"
    assert not [e for e in events if e["kind"] == "cell_executed"]  # nothing ran before approval
    code, reply = await api("runs", run_id, "approval", body={"cell_id": "c9", "decision": "run"})
    assert code == 409 and "'c1' is" in reply["message"]
    code, reply = await api("runs", run_id, "approval", body={"cell_id": "c1", "decision": "launch"})
    assert code == 400 and "decision must be one of" in reply["message"]
    code, _ = await api("runs", run_id, "approval", body={"cell_id": "c1", "decision": "edit", "source": "x = 2"})
    assert code == 200
    events += await events_until(api, run_id, "approval_request", after=len(events))
    second = events[-1]
    assert second["cell_id"] == "c2" and "subprocess" in second["concerns"][0]  # the gate's concern is shown
    edited = [e for e in events if e["kind"] == "cell_written" and e["cell_id"] == "c1"]
    assert edited[-1]["source"] == "x = 2" and edited[-1]["replaces"] == "c1"
    await api("runs", run_id, "approval", body={"cell_id": "c2", "decision": "skip"})
    events += await events_until(api, run_id, "approval_request", after=len(events))
    assert events[-1]["cell_id"] == "c3"
    code, _ = await api("runs", run_id, "approval", body={"cell_id": "c3", "decision": "stop"})
    events += await events_until(api, run_id, "finished", after=len(events))
    assert [e["cell_id"] for e in events if e["kind"] == "cell_executed"] == ["c1"]  # c2 skipped, c3 stopped
    assert events[-1]["status"] == "stopped"


async def test_stop_interrupts_a_long_cell_and_the_run_ends_cleanly(api, kernel, scripted, sandbox_kernelspec):
    scripted({"script-c": [call("add_cell", source="import time\ntime.sleep(120)", note="A long training."),
                           call("finish", status="solved", summary="never")]})
    kernel_id = await kernel(sandbox_kernelspec)
    code, reply = await api("runs", body=start_body(kernel_id, "script-c"))
    assert code == 201, reply
    run_id = reply["run_id"]
    await events_until(api, run_id, "cell_written")
    await asyncio.sleep(1.0)
    started = time.monotonic()
    code, reply = await api("runs", run_id, "stop", body={})
    assert code == 200 and reply["status"] == "stopping"
    events = await events_until(api, run_id, "finished", timeout=30)
    assert time.monotonic() - started < 15
    assert events[-1]["status"] == "stopped"
    executed = [e for e in events if e["kind"] == "cell_executed"][0]
    assert executed["error"]["ename"] == "KeyboardInterrupt"
    # The kernel survives the interrupt and takes the next run, once this one has let go of it.
    for _ in range(60):
        if (await api("runs", run_id, "notebook"))[1].get("final"):
            break
        await asyncio.sleep(0.5)
    scripted({"script-d": [call("finish", status="failed", summary="alive")]})
    code, reply = await api("runs", body=start_body(kernel_id, "script-d"))
    assert code == 201


async def test_two_notebooks_run_agents_at_the_same_time_without_crossing(api, kernel, scripted, sandbox_kernelspec):
    scripted({f"script-{name}": [call("add_cell", source=f"import time\nwho = '{name}'\nbegan = time.time()\ntime.sleep(5)\n"
                                             "print(who, began, time.time())",
                                      note=f"Run {name}."),
                                 call("finish", status="failed", summary=name)] for name in ("left", "right")})
    kernels = [await kernel(sandbox_kernelspec), await kernel(sandbox_kernelspec)]
    runs = []
    for kernel_id, name in zip(kernels, ("left", "right")):
        code, reply = await api("runs", body=start_body(kernel_id, f"script-{name}", request=f"run {name}"))
        assert code == 201, reply
        runs.append(reply["run_id"])
        if name == "left":  # a second, different run in a kernel whose run is working is refused
            code, reply = await api("runs", body=start_body(kernels[0], "script-left"))
            assert code == 409 and "still working in this kernel" in reply["message"]
    results = await asyncio.gather(*(events_until(api, r, "finished") for r in runs))
    spans = []
    for events, name in zip(results, ("left", "right")):
        printed = [e["outputs"][0]["text"].split() for e in events if e["kind"] == "cell_executed"]
        assert [words[0] for words in printed] == [name] and events[-1]["reason"] == name
        spans.append([float(t) for t in printed[0][1:]])
    # Side by side, not one after the other: the two 5 s cells were running at the same moment.
    assert max(began for began, _ in spans) < min(ended for _, ended in spans)


async def test_the_server_answers_others_while_a_run_starts_its_kernel(api, scripted, sandbox_kernelspec):
    """Starting a run (a sandboxed kernel of its own here, seconds) happens off the server's event loop: a
    chat run once froze the whole server while its kernel started."""
    scripted({"script-iso": [call("add_cell", source="print('isolated')", note="Say where."),
                             call("finish", status="failed", summary="isolated")]})
    post = asyncio.ensure_future(api("runs", body={"request": "compute something", "notebook_path": "iso.ipynb",
                                                   "isolated": True, "backend": "script-iso"}))
    await asyncio.sleep(0.5)
    code, backends = await api("backends")
    assert code == 200 and backends and not post.done()  # answered while the run's kernel was starting
    code, reply = await post
    assert code == 201, reply
    events = await events_until(api, reply["run_id"], "finished")
    assert [e["outputs"][0]["text"] for e in events if e["kind"] == "cell_executed"] == ["isolated\n"]


@pytest.mark.parametrize("body, status, message", [
    ("{not json", 400, "not valid JSON"),
    ("[1, 2]", 400, "must be a JSON object"),
    ({"request": "x"}, 400, "missing field(s): kernel_id, notebook_path"),
    ({"request": "x", "kernel_id": "nope", "notebook_path": "a.ipynb"}, 404, "no kernel with id 'nope'"),
    ({"request": "x", "kernel_id": "K", "notebook_path": "a.ipynb", "colour": "red"}, 400, "unknown field(s): colour"),
    ({"request": "x", "kernel_id": "K", "notebook_path": "a.ipynb", "mode": "yolo"}, 400, "mode must be one of"),
    ({"request": "x", "kernel_id": "K", "notebook_path": "a.ipynb", "data_dir": "missing"}, 400, "missing: no such folder"),
    ({"request": "x", "kernel_id": "K", "notebook_path": "a.ipynb", "backend": "gemini:pro"}, 400, "unknown backend"),
    ({"request": "x", "kernel_id": "K", "notebook_path": "../../etc/a.ipynb"}, 400, "outside the server's root"),
])
async def test_bad_requests_get_a_4xx_with_a_message(api, kernel, body, status, message):
    if isinstance(body, dict) and body.get("kernel_id") == "K":
        body["kernel_id"] = await kernel()
    code, reply = await api("runs", body=body)
    assert code == status and message in reply["message"]


async def test_unknown_runs_and_backends_listing(api):
    code, reply = await api("runs", "0123456789ab", "events")
    assert code == 404 and "no run with id" in reply["message"]
    code, reply = await api("runs", "0123456789ab", "stop", body={})
    assert code == 404
    code, reply = await api("backends")
    assert code == 200 and reply["backends"][0] == {
        "selector": "offline", "label": "Offline expert planner (no model, no network)", "available": True, "reason": None}


async def test_the_same_start_twice_gives_the_same_run_and_runs_are_listed_per_notebook(api, kernel, scripted):
    """A double click on Start (or a retried POST) must not look like a failure while the first run goes on."""
    scripted({"script-slow": [call("add_cell", source="import time; time.sleep(3)", note="Wait."),
                              call("finish", status="failed", summary="done")]})
    kernel_id = await kernel()
    body = start_body(kernel_id, "script-slow")
    code, first = await api("runs", body=body)
    code_again, again = await api("runs", body=body)
    assert (code, code_again) == (201, 200) and again == {"run_id": first["run_id"], "status": "running", "attached": True}
    code, other = await api("runs", body={**body, "request": "something else"})
    assert code == 409 and first["run_id"] in other["message"]
    code, listed = await api("runs", notebook_path="analysis.ipynb")
    assert [r["run_id"] for r in listed["runs"]] == [first["run_id"]] and listed["runs"][0]["request"] == body["request"]
    code, none = await api("runs", notebook_path="elsewhere.ipynb")
    assert none["runs"] == []
    await events_until(api, first["run_id"], "finished")
