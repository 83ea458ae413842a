"""The package's floors hold: no import cycle between its sub-packages or between its modules, counting imports
made inside functions (scripts/import_graph.py; lint-imports checks the layer order in scripts/test.sh)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import import_graph  # noqa: E402

# Shared types other branches of issue 18 move into contracts/; once they have moved, these name nothing.
MOVING_TO_CONTRACTS = ("jupyter_medagent.agent.protocols", "jupyter_medagent.judge.findings")


def test_no_sub_package_sits_in_an_import_cycle():
    moved = [f"--moved={module}=contracts" for module in MOVING_TO_CONTRACTS]
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "import_graph.py"), "--quiet", *moved],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == "0 sub-packages in 0 cycle(s)"


def test_no_module_sits_in_an_import_cycle():
    assert import_graph.cycles(import_graph.module_graph()) == []


def test_contracts_import_nothing_else_of_the_package():
    graph = import_graph.module_graph()
    contracts = {m: targets for m, targets in graph.items() if m.startswith("jupyter_medagent.contracts")}
    assert contracts and all(t.startswith("jupyter_medagent.contracts") for ts in contracts.values() for t in ts)


def test_an_import_inside_a_function_counts(tmp_path):
    package = tmp_path / "pkg"
    for unit in ("low", "high"):
        (package / unit).mkdir(parents=True)
        (package / unit / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "high" / "user.py").write_text("from pkg.low import base\n")
    (package / "low" / "base.py").write_text("def later():\n    from pkg.high.user import thing\n    return thing\n")
    modules = import_graph.module_graph(package)
    assert modules["pkg.low.base"] == {"pkg.high.user"}
    assert import_graph.cycles(import_graph.unit_graph(modules)) == [["high", "low"]]
