"""The %%medagent magic inside a real IPython shell, driven by a scripted backend."""

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_medagent.agent.protocols import ModelTurn, ToolCall
from jupyter_medagent.notebook.refine import is_guard_cell


class Scripted:
    name, model = "scripted", "script-1"

    def __init__(self):
        self.calls = [ToolCall("add_cell", {"source": "answer = 6 * 7\nprint(answer)", "note": "Compute."}),
                      ToolCall("finish", {"status": "solved", "summary": "done"})]

    def next_turn(self, view):
        return ModelTurn(tool_calls=[self.calls.pop(0)])


@pytest.fixture
def shell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("jupyter_medagent.backends.make_backend", lambda selector: Scripted())
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "jupyter_medagent")
    return ip


@pytest.fixture
def sandbox_kernel(monkeypatch):
    """The shell stands for a "Python 3 (medagent sandbox)" kernel: a model's cells may run in it."""
    monkeypatch.setattr("jupyter_medagent.isolation.kernelspec.in_sandbox_kernel", lambda: True)


def test_magic_runs_cells_in_the_users_namespace_and_writes_the_notebook(shell, sandbox_kernel, tmp_path):
    shell.run_cell_magic("medagent", "--safety enforce --out result.ipynb", "compute the answer")
    assert shell.user_ns["answer"] == 42
    nb = nbformat.read(tmp_path / "result.ipynb", as_version=4)
    assert [c.source for c in nb.cells if c.cell_type == "code" and not is_guard_cell(c)] == ["answer = 6 * 7\nprint(answer)"]
    assert nb.metadata["medagent"]["status"] == "solved"


def test_magic_approve_mode_asks_before_running(shell, sandbox_kernel, tmp_path, monkeypatch):
    answers = iter(["s"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    shell.user_ns.pop("answer", None)
    shell.run_cell_magic("medagent", "--approve --out approved.ipynb", "compute the answer")
    assert "answer" not in shell.user_ns  # skipped


def test_a_model_backend_never_runs_cells_in_a_plain_user_kernel(shell, tmp_path, capsys):
    """In a plain kernel a model's cell runs in a kernel of the run's own: the user's namespace does not get
    its variables, the refined notebook holds the cell with the output it gave there."""
    from jupyter_medagent.isolation import sandbox_problem

    shell.user_ns.pop("answer", None)
    shell.run_cell_magic("medagent", "--safety enforce --out own.ipynb --no-verify", "compute the answer")
    assert "answer" not in shell.user_ns
    nb = nbformat.read(tmp_path / "own.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and not is_guard_cell(c)]
    assert [c.source for c in code] == ["answer = 6 * 7\nprint(answer)"]
    assert "42" in "".join(o.get("text", "") for o in code[0].outputs)
    said = capsys.readouterr().out
    assert "not in this notebook's kernel" in said
    if sandbox_problem() is None:
        assert "waits for your approval" not in said  # sandboxed: the cell ran without asking


def test_without_a_sandbox_a_model_backend_asks_before_every_cell(shell, tmp_path, monkeypatch, capsys):
    """No bubblewrap: even with --safety enforce, each model-written cell waits for approval, said once."""
    monkeypatch.setattr("jupyter_medagent.session.sandbox_problem", lambda: "bubblewrap (bwrap) is not installed")
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt="": asked.append(prompt) or "s")
    shell.user_ns.pop("answer", None)
    shell.run_cell_magic("medagent", "--safety enforce --out asked.ipynb --no-verify", "compute the answer")
    assert len(asked) == 1 and "Run this cell?" in asked[0] and "answer" not in shell.user_ns
    said = capsys.readouterr().out
    assert said.count("each one waits for your approval") == 1 and "bwrap) is not installed" in said


def test_empty_request_is_explained(shell, capsys):
    shell.run_cell_magic("medagent", "", "   ")
    assert "write your request" in capsys.readouterr().out


def test_magic_in_a_real_kernel_keeps_outputs_in_the_agents_cells(tmp_path):
    """In ipykernel (as behind JupyterLab) the magic's own cell holds IPython's display trap: the agent's
    last-expression values (a montage, the data card) must still land in the agent's cells, as JSON-ready
    outputs, and the run must leave a notebook named after the user's and nothing else."""
    import os

    from jupyter_client.manager import start_new_kernel

    from jupyter_medagent.synth.replicas import synth_cardiac
    from jupyter_medagent.contracts.mime import RUN_MIME

    synth_cardiac(tmp_path / "data", cases=2, seed=1, pitfalls=["orientation_flip"])
    km, kc = start_new_kernel(cwd=str(tmp_path), env={**os.environ, "JPY_SESSION_NAME": str(tmp_path / "study.ipynb")})
    outputs = []
    try:
        kc.execute_interactive("%load_ext jupyter_medagent", timeout=60)
        reply = kc.execute_interactive(
            "%%medagent --data data --no-verify\nCompute the LV volumes and ejection fraction of each patient from "
            "the given labels.", timeout=300, output_hook=lambda msg: outputs.append(msg))
    finally:
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok"
    shown = [m for m in outputs if m["msg_type"] in ("display_data", "update_display_data", "execute_result", "stream")]
    # Under the magic's cell: its run view and the closing link, none of the agent's outputs.
    assert all(RUN_MIME in m["content"].get("data", {}) or "Refined notebook" in m["content"].get("data", {}).get(
        "text/html", "") for m in shown), [m["content"] for m in shown]
    refined = tmp_path / "study-medagent.ipynb"
    nb = nbformat.read(refined, as_version=4)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images and all(isinstance(o["data"]["image/png"], str) for o in images)
    assert not list(tmp_path.glob(".medagent-*")) and not (tmp_path / "medagent.ipynb").exists()
    final = [m for m in outputs if m["msg_type"] == "update_display_data"][-1]["content"]["data"][RUN_MIME]
    kept = [e["kind"] for e in final["events"]]
    assert final["done"] and "render" in kept and kept[-1] == "finished" and "cell_output" not in kept
