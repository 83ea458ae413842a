"""A notebook a model backend wrote says so at the top, and its first cell arms the guard, so a sleeper cell
that behaves while medagent watches is still watched when the notebook is re-run anywhere else."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from backends.wire import WireServer, openai_reply  # noqa: E402

from jupyter_medagent.isolation import guard  # noqa: E402
from jupyter_medagent.contracts.options import RunOptions  # noqa: E402
from jupyter_medagent.session import RunSetup, build_agent  # noqa: E402
from jupyter_medagent.kernel import new_kernel_executor  # noqa: E402


@pytest.fixture()
def project(tmp_path):
    import nibabel as nib
    import numpy as np

    data = tmp_path / "data"
    data.mkdir()
    nib.save(nib.Nifti1Image(np.ones((4, 4, 2), np.float32), np.eye(4)), str(data / "case0.nii.gz"))
    return tmp_path, data


def _run(project_dir: Path, data: Path, cells: list[str]):
    script = [("add_cell", {"source": c, "note": f"Step {i}."}) for i, c in enumerate(cells)]
    script.append(("finish", {"status": "solved", "summary": "done"}))
    server = WireServer([openai_reply(tool=step, call_id=f"call_{i}") for i, step in enumerate(script)])
    setup = RunSetup("Count the scans.", str(data), project_dir, "refined.ipynb",
                     RunOptions(backend=f"openai:test-model@{server.url}/v1", safety="off"))
    agent = build_agent(setup, new_kernel_executor)
    finished = None
    try:
        for event in agent.run():
            finished = event if event.kind == "finished" else finished
    finally:
        agent.executor.close()
        server.close()
    return finished


def test_a_sleeper_cell_is_watched_when_the_refined_notebook_is_re_run_elsewhere(project):
    project_dir, data = project
    trigger, victim = project_dir / "wake-up", project_dir / "victim.txt"
    sleeper = (f"import os\nif os.path.exists({str(trigger)!r}):  # only once nobody is watching\n"
               f"    open({str(victim)!r}, 'w').write('acted')\nprint('behaving')")
    finished = _run(project_dir, data, ["import glob\nprint(len(glob.glob('*')))", sleeper])
    assert finished.status == "solved" and finished.reexecuted_ok, finished.reason
    nb = nbformat.read(finished.notebook, as_version=4)
    assert "Written by a model (openai: test-model)" in nb.cells[0].source
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "watch_model_code(" in first_code.source and nb.metadata.get("signature") is None
    assert all("trusted" not in c.metadata for c in nb.cells)

    trigger.write_text("now")  # later, outside medagent: a plain kernel
    with pytest.raises(CellExecutionError, match=r"\[medagent guard\] refused"):
        NotebookClient(nb, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(Path(finished.notebook).parent)}}).execute()
    assert not victim.exists()


def test_watching_does_not_break_ordinary_cells(tmp_path):
    out, data = tmp_path / "out", tmp_path / "data"
    out.mkdir()
    data.mkdir()
    (data / "values.csv").write_text("a,b\n1,2\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in [
        f"from jupyter_medagent.isolation.guard import watch_model_code\n"
        f"watch_model_code(writable=[{str(out)!r}], protected=[{str(data)!r}])",
        f"import pandas as pd, numpy as np, tempfile\nframe = pd.read_csv({str(data / 'values.csv')!r})\n"
        f"np.save({str(out / 'a.npy')!r}, frame.to_numpy())\nwith tempfile.NamedTemporaryFile() as t:\n    t.write(b'x')\n"
        "import matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()",
        "import os\ntry:\n    os.system('true')\nexcept PermissionError:\n    print('still watched')"]])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(out)}}).execute()
    assert (out / "a.npy").exists() and "still watched" in nb.cells[2].outputs[0]["text"]


def test_arming_for_good_is_one_way_even_with_the_release_token(tmp_path):
    from jupyter_medagent.kernel import KernelClientExecutor

    executor = KernelClientExecutor(cwd=tmp_path, guard=guard.policy([tmp_path]))
    try:
        executor.execute(f"from jupyter_medagent.isolation.guard import watch_model_code\n"
                         f"watch_model_code([{str(tmp_path)!r}])")  # marked, then released by the executor
        later = executor._run("import os\ntry:\n    os.system('true')\nexcept PermissionError:\n    print('watched')",
                              timeout=30)
        assert "watched" in later.outputs[0]["text"]
    finally:
        executor.close()


@pytest.fixture()
def tcp_canary():
    """A loopback TCP listener that counts the connections it accepts."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop.set()
    thread.join()
    listener.close()


def test_a_re_run_in_a_plain_kernel_starts_no_program_and_reaches_no_network(tmp_path, tcp_canary):
    """The refined notebook's first cell locks the kernel down below Python: a child started through
    _posixsubprocess.fork_exec (no audit event) cannot exec, and zmq's native sockets (no audit event either)
    cannot reach a loopback canary; ordinary cells still run."""
    from jupyter_medagent.notebook.draft import DraftCell
    from jupyter_medagent.notebook.refine import ModelAuthor, refined_notebook

    port, accepted = tcp_canary
    out, data = tmp_path / "out", tmp_path / "data"
    out.mkdir()
    data.mkdir()
    marker = out / "exec-ran"
    cells = [
        DraftCell("c1", "import numpy as np\nprint('mean', np.arange(5).mean())", "An ordinary step.", status="ok"),
        DraftCell("c2", "import os, multiprocessing.connection as mc\n"
                  f"child = mc.util.spawnv_passfds(b'/bin/sh', [b'/bin/sh', b'-c', b'touch {marker}'], ())\n"
                  "print('child exit', os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]))",
                  "A sleeper's process.", status="ok"),
        DraftCell("c3", "import time, zmq\nsock = zmq.Context.instance().socket(zmq.DEALER)\n"
                  f"sock.connect('tcp://127.0.0.1:{port}')\nsock.send(b'phone home')\ntime.sleep(3)\n"
                  "sock.close(linger=0)\nprint('sent')", "A sleeper's connection.", status="ok")]
    nb = refined_notebook("Count the scans.", cells, {}, {},
                          author=ModelAuthor("openai: test-model", str(out), str(data)))
    assert "seccomp" in nb.cells[0].source and "Restarting the kernel lifts both" in nb.cells[0].source
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(out)}}).execute()
    texts = ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells if c.cell_type == "code"]
    assert "no program" in texts[0] and "mean 2.0" in texts[1]
    assert "child exit 255" in texts[2] and not marker.exists()  # the forked child could not exec
    assert "sent" in texts[3] and accepted == []


def test_a_re_run_in_a_plain_kernel_writes_files_only_into_the_output_folder(tmp_path):
    """R1: a sleeper writes a .pth into site-packages with a native writer (ATen opens and mmaps the file: no
    audit event reaches the guard); Landlock refuses it below Python, while the notebook's own writes (the
    output folder, temp files, a saved figure) and later cells still work."""
    from jupyter_medagent.notebook.draft import DraftCell
    from jupyter_medagent.notebook.refine import ModelAuthor, refined_notebook

    out, data, site = tmp_path / "out", tmp_path / "data", tmp_path / "site-packages"
    for folder in (out, data, site):
        folder.mkdir()
    planted = site / "zz_sleeper.pth"
    payload = "import os; open('/tmp/canary', 'w')\n"
    cells = [
        DraftCell("c1", "import tempfile, numpy as np, matplotlib\nmatplotlib.use('agg')\n"
                  "import matplotlib.pyplot as plt\n"
                  f"np.save({str(out / 'a.npy')!r}, np.arange(3))\nplt.plot([1, 2]); plt.savefig({str(out / 'p.png')!r})\n"
                  "with tempfile.NamedTemporaryFile() as t:\n    t.write(b'x')\nprint('wrote')", "Ordinary writes.",
                  status="ok"),
        DraftCell("c2", f"import torch\npayload = {payload!r}.encode()\ntry:\n"
                  f"    s = torch.UntypedStorage.from_file({str(planted)!r}, shared=True, nbytes=len(payload))\n"
                  "    s.copy_(torch.frombuffer(bytearray(payload), dtype=torch.uint8).untyped_storage())\n"
                  "    print('planted')\nexcept RuntimeError as exc:\n    print('refused:', exc)",
                  "A sleeper's native writer.", status="ok"),
        DraftCell("c3", "import threading\ndef later():\n    try:\n"
                  f"        open({str(site / 'from-thread.pth')!r}, 'w')\n    except PermissionError:\n"
                  "        print('thread refused')\nt = threading.Thread(target=later); t.start(); t.join()\n"
                  "print(6 * 7)", "A thread's write, then an ordinary cell.", status="ok")]
    nb = refined_notebook("Count the scans.", cells, {}, {},
                          author=ModelAuthor("openai: test-model", str(out), str(data)))
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(out)}}).execute()
    texts = ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells if c.cell_type == "code"]
    assert not planted.exists() and list(site.iterdir()) == []
    assert "refused:" in texts[2] and "Permission denied" in texts[2]
    assert "Landlock" in texts[0] and "wrote" in texts[1]
    assert (out / "a.npy").exists() and (out / "p.png").exists()
    assert "thread refused" in texts[3] and "42" in texts[3]


def test_the_refined_notebook_stores_no_output_that_makes_the_browser_fetch(tmp_path):
    """R4: opening the refined notebook in JupyterLab (untrusted: Lab's sanitizer keeps remote images) sent
    the Jupyter login cookie to a listener on 127.0.0.1 through an <img> and a Markdown image a model cell
    displayed; stored outputs are cleaned as the sandbox relay cleans them, medagent's own images stay."""
    from jupyter_medagent.notebook.draft import DraftCell
    from jupyter_medagent.notebook.refine import ModelAuthor, refined_notebook

    beacon = "http://127.0.0.1:46991/beacon"
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    outputs = [{"output_type": "display_data", "metadata": {},
                "data": {"text/html": f'<img src="{beacon}-html" width=1><b>kept</b>', "text/plain": "<HTML>"}},
               {"output_type": "display_data", "metadata": {},
                "data": {"text/markdown": f"![m]({beacon}-markdown) **kept**", "text/plain": "<Markdown>"}},
               {"output_type": "display_data", "metadata": {}, "data": {"image/png": png, "text/plain": "<Figure>"}},
               {"output_type": "stream", "name": "stdout", "text": "mean 2.0\n"}]
    cell = DraftCell("c1", "show()", "A step.", status="ok", outputs=outputs)
    nb = refined_notebook("Count the scans.", [cell], {}, {}, author=ModelAuthor("openai: m", str(tmp_path)))
    path = tmp_path / "refined.ipynb"
    nbformat.write(nb, path)
    stored = path.read_text()
    assert "127.0.0.1:46991" not in stored
    shown = next(c for c in nbformat.read(path, as_version=4).cells if c.get("outputs")).outputs
    assert "<b>kept</b>" in shown[0]["data"]["text/html"] and "<strong>kept</strong>" in shown[1]["data"]["text/markdown"]
    assert shown[2]["data"]["image/png"] == png and shown[3]["text"] == "mean 2.0\n"


def test_a_runs_events_carry_no_output_that_makes_the_browser_fetch(project):
    """R4: the timeline and the mirrored cells render a model cell's outputs from the run's events, in the
    user's page: they carry them cleaned (the agent itself still reads the cell's outputs as they were)."""
    project_dir, data = project
    beacon = "http://127.0.0.1:46991/beacon"
    cell = ("from IPython.display import HTML, Markdown, display\n"
            f"display(HTML('<img src=\"{beacon}-html\"><b>kept</b>'))\ndisplay(Markdown('![m]({beacon}-md)'))")
    script = [("add_cell", {"source": cell, "note": "Show it."}), ("finish", {"status": "solved", "summary": "done"})]
    server = WireServer([openai_reply(tool=step, call_id=f"call_{i}") for i, step in enumerate(script)])
    setup = RunSetup("Count the scans.", str(data), project_dir, "refined.ipynb",
                     RunOptions(backend=f"openai:test-model@{server.url}/v1", safety="off"))
    agent = build_agent(setup, new_kernel_executor)
    try:
        events = [event.to_json() for event in agent.run()]
    finally:
        agent.executor.close()
        server.close()
    executed = [e for e in events if e["kind"] in ("cell_executed", "cell_output")]
    assert executed and "<b>kept</b>" in str(executed[-1]["outputs"])
    assert [e["kind"] for e in events if beacon in str(e)] == ["cell_written"]  # the code, shown as text
