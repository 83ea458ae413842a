"""Print the import graph between jupyter_medagent's sub-packages and the cycles in it.

Every import statement counts, at module level and inside functions alike: an import
deferred into a function still couples the two layers. A sub-package is the first
component below ``jupyter_medagent`` (``imaging``, ``agent``, ...); a top-level module
(``session.py``, ``magic.py``) is a unit of its own.

    python scripts/import_graph.py            # edges, then cycles (strongly connected sets)
    python scripts/import_graph.py --modules  # the same between modules, within each unit

Exits 1 when a cycle exists, so CI and the tests can call it.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = "jupyter_medagent"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str], root: Path = ROOT) -> set[str]:
    """The package's modules that ``path`` imports anywhere in its body."""
    name = module_name(path, root)
    package = root.name
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from x import y` imports the module x.y when there is one, else x itself.
            targets = [
                f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith(package + ".") or target == package:
                found.add(target)
    found.discard(name)
    return found


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, for every module under the package folder ``root``."""
    files = sorted(p for p in root.rglob("*.py") if "labextension" not in p.parts)
    known = {module_name(p, root) for p in files}
    return {module_name(p, root): imported_modules(p, known, root) for p in files}


def unit_graph(modules: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges between units."""
    units: dict[str, set[str]] = defaultdict(set)
    for source, targets in modules.items():
        units[unit_of(source)]
        for target in targets:
            # The package's own __init__ is not a layer; skip edges into it.
            if "." in target and unit_of(target) != unit_of(source):
                units[unit_of(source)].add(unit_of(target))
    return dict(units)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found, key=lambda c: (-len(c), c))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="module-level graph instead of sub-packages")
    parser.add_argument("--quiet", action="store_true", help="print only the cycles")
    parser.add_argument("--why", action="store_true", help="name the module edges behind each unit edge")
    args = parser.parse_args(argv)
    modules = module_graph()
    graph = modules if args.modules else unit_graph(modules)
    if not args.quiet:
        for source in sorted(graph):
            print(f"{source} -> {', '.join(sorted(graph[source])) or '(nothing)'}")
            if args.why and not args.modules:
                for module, targets in sorted(modules.items()):
                    if unit_of(module) == source:
                        for target in sorted(t for t in targets if "." in t and unit_of(t) != source):
                            print(f"    {module} -> {target}")
    found = cycles(graph)
    kind = "modules" if args.modules else "sub-packages"
    print(f"{sum(map(len, found))} {kind} in {len(found)} cycle(s)")
    for component in found:
        print("  cycle: " + ", ".join(component))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
