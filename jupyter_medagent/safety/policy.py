"""The safety gate: model-written code is read (never run) before it reaches a kernel. A fast first
opinion with clear reasons, not the barrier: the sandbox and the runtime guard (``isolation/``) are.

``check_code`` parses a cell (IPython syntax included: ``!cmd`` and ``%magics`` are turned into the
calls they stand for) and lists what the policy refuses: shell and subprocess escapes, network
access, package installs, code it cannot read (eval/exec), and deleting or writing files outside
the run's output folder. Paths are followed through literals, ``Path(...)``, ``/`` joins,
``os.path.join``, ``expanduser`` and names assigned earlier in the cell; a delete or write is only
refused when its target is known (a clean-up loop over ``glob`` results is left to the runtime
guard, which sees the real path).
"""

from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from jupyter_medagent.contracts.options import SAFETY_MODES

Mode = Literal["enforce", "approve", "off"]
WRITE_MODES = set("wax+")


@lru_cache(maxsize=1)
def rules() -> dict:
    return json.loads(resources.files("jupyter_medagent.safety").joinpath("rules.json").read_text())


@dataclass
class SafetyPolicy:
    """Where the run may write, and how refusals are handled.

    ``enforce`` (default): refused cells never run, the model is told why. ``approve``: every cell
    waits for the user, who sees the gate's concerns and decides. ``off``: the explicit opt-out.
    """

    output_dir: str | os.PathLike
    cwd: str | os.PathLike = "."
    mode: Mode = "enforce"
    writable: list[str] = field(default_factory=list)  # further folders the user allows writes to
    protected: list[str] = field(default_factory=list)  # never written, even inside the output folder (the data)

    def __post_init__(self) -> None:
        if self.mode not in ("enforce", "approve", "off"):
            raise ValueError(f"unknown safety mode {self.mode!r}; use enforce, approve or off")

    def allowed_roots(self) -> list[Path]:
        return [self.resolve(self.output_dir)] + [self.resolve(p) for p in self.writable]

    def resolve(self, path: str | os.PathLike) -> Path:
        path = Path(os.path.expanduser(str(path)))
        return (path if path.is_absolute() else Path(self.cwd) / path).resolve()

    def __call__(self, code: str) -> list[str]:
        """The Agent's safety hook: reasons this cell is refused (empty when it may run)."""
        return [] if self.mode == "off" else check_code(code, self)


def check_code(code: str, policy: SafetyPolicy) -> list[str]:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        python = TransformerManager().transform_cell(code)
        tree = ast.parse(python)
    except SyntaxError as exc:
        # IPython runs some lines that are not Python (``pip --version`` becomes %pip): never waved through.
        return [f"is not valid Python after IPython's transformation (line {exc.lineno}: {exc.msg}); IPython might "
                "run it as a magic or a shell command. Write plain Python"]
    checker = _Checker(policy)
    checker.visit(tree)
    return list(dict.fromkeys(checker.refusals))  # unique, in order


class _Checker(ast.NodeVisitor):
    def __init__(self, policy: SafetyPolicy):
        self.policy, self.rules = policy, rules()
        self.aliases: dict[str, str] = {}  # local name -> dotted name it was imported as
        self.paths: dict[str, Path | None] = {}  # local name -> path it was assigned (None: unknown)
        self.refusals: list[str] = []

    # ------------------------------------------------------------------ names
    def dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call):  # get_ipython().system -> get_ipython().system
            base = self.dotted(node.func)
            return f"{base}()" if base else None
        return None

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
            self.check_module(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        self.check_module(module)
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            self.check_module(f"{module}.{alias.name}")

    def check_module(self, module: str) -> None:
        for group, why in (("shell", "starts processes or shell commands"), ("network", "reaches the network"),
                           ("install", "installs packages")):
            if any(module == m or module.startswith(m + ".") for m in self.rules[group]["modules"]):
                self.refusals.append(f"imports {module}, which {why}")

    # ------------------------------------------------------------------ paths
    def path_of(self, node: ast.AST | None) -> Path | None:
        """The path an expression denotes when it can be worked out from the cell alone."""
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return Path(os.path.expanduser(node.value))
        if isinstance(node, ast.Name):
            return self.paths.get(node.id)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left, right = self.path_of(node.left), self.path_of(node.right)
            return left / right if left is not None and right is not None else None
        if isinstance(node, ast.Call):
            name = self.dotted(node.func) or ""
            if name in ("pathlib.Path", "Path", "pathlib.PurePath", "os.path.join", "os.path.abspath",
                        "os.path.realpath", "os.path.normpath") and node.args:
                parts = [self.path_of(a) for a in node.args]
                return Path(*parts) if all(p is not None for p in parts) else None
            if name in ("os.path.expanduser", "os.path.expandvars") and node.args:
                return self.path_of(node.args[0])
            if name in ("pathlib.Path.home", "Path.home"):
                return Path.home()
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("expanduser", "resolve", "absolute"):
                return self.path_of(node.func.value)
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.paths[target.id] = self.path_of(node.value)

    def outside(self, path: Path) -> bool:
        resolved = self.policy.resolve(path)
        if any(resolved.is_relative_to(self.policy.resolve(p)) for p in self.policy.protected):
            return True
        return not any(resolved.is_relative_to(root) for root in self.policy.allowed_roots())

    def check_target(self, action: str, node: ast.AST | None) -> None:
        path = self.path_of(node)
        where = f"outside the run's output folder ({self.policy.output_dir}) or inside the data folder"
        if path is not None and self.outside(path):
            self.refusals.append(f"{action} {str(path)!r}, {where}")

    # ------------------------------------------------------------------ calls
    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        name = self.dotted(node.func) or ""
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        r = self.rules
        if name.startswith("get_ipython()."):
            self.check_ipython(name.split(".", 1)[1], node)
            return
        if name in r["shell"]["calls"] or any(name.startswith(p) for p in r["shell"]["call_prefixes"]):
            self.refusals.append(f"calls {name}, which runs a shell command or a process")
        if any(name == m or name.startswith(m + ".") for m in r["shell"]["modules"]):
            self.refusals.append(f"calls {name}, which runs a shell command or a process")
        if name in r["network"]["calls"]:
            self.refusals.append(f"calls {name}, which reaches the network")
        for kw in node.keywords:
            if kw.arg in r["network"]["keyword_true"] and isinstance(kw.value, ast.Constant) and kw.value.value is True:
                self.refusals.append(f"calls {name or method} with {kw.arg}=True, which reaches the network")
        if name in r["dynamic"]["calls"] and not all(isinstance(a, ast.Constant) for a in node.args):
            self.refusals.append(f"calls {name} on code the gate cannot read; write the code out instead")
        self.check_files(name, method, node)

    def argument(self, node: ast.Call, index: int | str) -> ast.AST | None:
        if index == "self":
            return node.func.value if isinstance(node.func, ast.Attribute) else None
        return node.args[index] if len(node.args) > index else None

    def check_files(self, name: str, method: str | None, node: ast.Call) -> None:
        r = self.rules
        if name in r["delete"]["calls"]:
            self.check_target("deletes or moves", self.argument(node, r["delete"]["calls"][name]))
        elif method in r["delete"]["methods"]:
            self.check_target("deletes or moves", self.argument(node, r["delete"]["methods"][method]))
        if name in r["write"]["calls"]:
            self.check_target("writes", self.argument(node, r["write"]["calls"][name]))
        elif method in r["write"]["methods"]:
            self.check_target("writes", self.argument(node, r["write"]["methods"][method]))
        if name in ("open", "io.open", "builtins.open"):
            target, mode_node = self.argument(node, 0), self.argument(node, 1)
        elif method == "open":  # Path(...).open("w"); PIL's Image.open(path) has no mode and is left alone
            target, mode_node = node.func.value, self.argument(node, 0)
        else:
            return
        mode_node = next((kw.value for kw in node.keywords if kw.arg == "mode"), mode_node)
        mode = mode_node.value if isinstance(mode_node, ast.Constant) and isinstance(mode_node.value, str) else "r"
        if set(mode) <= set("rwxabt+") and WRITE_MODES & set(mode):
            self.check_target("writes", target)

    def check_ipython(self, call: str, node: ast.Call) -> None:
        r = self.rules
        magic = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        if call in ("system", "getoutput", "system_piped", "system_raw"):
            words = str(magic or "").split()
            if words and words[0] in r["install"]["magics"] + ["python", "python3"] and "install" in words:
                self.refusals.append(f"installs packages (!{' '.join(words[:2])}); the environment is the user's to change")
            else:
                self.refusals.append("runs a shell command (! or get_ipython().system)")
        elif call in ("run_line_magic", "run_cell_magic", "magic"):
            if magic in r["install"]["magics"]:
                self.refusals.append(f"installs packages (%{magic}); the environment is the user's to change")
            elif magic in r["shell"]["magics"]:
                self.refusals.append(f"runs a shell or external program (%{magic})")
            elif magic is None:
                self.refusals.append("runs a magic the gate cannot read")




def safety_for(mode: str, *, output_dir, cwd, data_dir: str | None, approver=None):
    """(safety hook, approver) for an Agent: the one place the front doors turn a mode into a gate."""
    if mode not in SAFETY_MODES:
        raise ValueError(f"unknown safety mode {mode!r}; use one of {', '.join(SAFETY_MODES)}")
    policy = SafetyPolicy(output_dir, cwd=cwd, mode=mode, protected=[data_dir] if data_dir else [])
    return (None if mode == "off" else policy), (approver if mode == "approve" else None)
