"""What a cell template imports. A template declares the imports its code needs from the set-up cell in its first
lines, one ``# needs: <import statement>`` each; the set-up cell of a plan imports what its cells declare, merged and
grouped as isort would (standard library, third party, this package; plain imports before `from` imports), so a notebook imports only what it uses."""

from __future__ import annotations

import ast
import sys

NEEDS = "# needs: "
FIRST_PARTY = "jupyter_medagent"
WIDTH = 120


def split_needs(text: str) -> tuple[list[str], str]:
    """(the import statements ``text`` declares, the template without its declarations)."""
    lines = text.splitlines(keepends=True)
    needs = []
    while lines and lines[0].startswith(NEEDS):
        needs.append(lines.pop(0)[len(NEEDS):].strip())
    return needs, "".join(lines)


def _section(module: str) -> int:
    top = module.split(".")[0]
    return 2 if top == FIRST_PARTY else 0 if top in sys.stdlib_module_names else 1


def import_block(statements: list[str]) -> str:
    """The statements merged (one ``from`` line per module), sorted and grouped; long lines wrapped in parentheses."""
    plain: set[tuple[str, str | None]] = set()
    names: dict[str, set[tuple[str, str | None]]] = {}
    for statement in statements:
        for node in ast.parse(statement).body:
            if isinstance(node, ast.Import):
                plain.update((a.name, a.asname) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.setdefault(node.module, set()).update((a.name, a.asname) for a in node.names)
            else:
                raise ValueError(f"{statement!r} is not an import statement")
    lines: list[tuple[int, str, str]] = []
    for module, alias in plain:
        lines.append((_section(module), module, f"import {module}" + (f" as {alias}" if alias else "")))
    for module, imported in names.items():
        listed = ", ".join(n + (f" as {a}" if a else "") for n, a in sorted(imported, key=lambda x: (x[0].lower(), x)))
        line = f"from {module} import {listed}"
        if len(line) > WIDTH:
            line = _wrapped(f"from {module} import (", listed + ")")
        lines.append((_section(module), module, line))
    groups = [[text for section, _, text in sorted(lines, key=lambda x: (x[2].startswith("from"), x[1]))
               if section == wanted] for wanted in (0, 1, 2)]
    return "\n\n".join("\n".join(group) for group in groups if group)


def _wrapped(opening: str, rest: str) -> str:
    lines, current = [], opening
    for word in rest.split(" "):
        if len(current) + 1 + len(word) > WIDTH and current.strip():
            lines.append(current.rstrip())
            current = " " * len(opening) + word
        else:
            current += ("" if current.endswith("(") or not current.strip() else " ") + word
    return "\n".join(lines + [current])
