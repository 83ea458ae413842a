"""The %%medagent magic inside a real IPython shell, driven by a scripted backend."""

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_medagent.agent.protocols import ModelTurn, ToolCall


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


def test_magic_runs_cells_in_the_users_namespace_and_writes_the_notebook(shell, tmp_path):
    shell.run_cell_magic("medagent", "--safety enforce --out result.ipynb", "compute the answer")
    assert shell.user_ns["answer"] == 42
    nb = nbformat.read(tmp_path / "result.ipynb", as_version=4)
    assert [c.source for c in nb.cells if c.cell_type == "code"] == ["answer = 6 * 7\nprint(answer)"]
    assert nb.metadata["medagent"]["status"] == "solved"


def test_magic_approve_mode_asks_before_running(shell, tmp_path, monkeypatch):
    answers = iter(["s"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    shell.user_ns.pop("answer", None)
    shell.run_cell_magic("medagent", "--approve --out approved.ipynb", "compute the answer")
    assert "answer" not in shell.user_ns  # skipped


def test_empty_request_is_explained(shell, capsys):
    shell.run_cell_magic("medagent", "", "   ")
    assert "write your request" in capsys.readouterr().out
