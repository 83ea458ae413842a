"""Skills a model backend may use instead of rediscovering the field: the project's own toolkit
(``toolkit_reference``) and the offline planner's plan for the request at hand (``propose_recipe``).

The reference is generated from the code (signatures and the first lines of docstrings), so it
cannot drift from what the kernel really offers. Each run chooses which skills its backend sees
(``SKILL_LEVELS``), so a benchmark can measure what they are worth.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from functools import lru_cache
from typing import Any

from jupyter_medagent.contracts.options import SKILL_LEVELS

# What a run's backend may see at each of SKILL_LEVELS: none, the toolkit reference, or the reference and the plan.
SKILL_TOOLS = dict(zip(SKILL_LEVELS, ((), ("toolkit_reference",), ("toolkit_reference", "propose_recipe"))))
ALL_SKILL_TOOLS = SKILL_TOOLS["all"]
# Packages whose public API generated notebooks may call; pipelines' helpers live in its sub-modules.
TOOLKIT_PACKAGES = ("jupyter_medagent.imaging", "jupyter_medagent.judge", "jupyter_medagent.pipelines")
DOC_LINES = 3  # docstring lines shown per entry in a module's listing
QUALIFIED = re.compile(r"\b(?:[a-z_][a-z0-9_]*\.)+([A-Za-z_]\w*)")


@lru_cache(maxsize=1)
def toolkit_modules() -> dict[str, list[tuple[str, Any]]]:
    """{module name: [(public name, object)]}: a package's ``__all__``, else each sub-module's own public
    functions and classes (those defined there, not imported)."""
    modules: dict[str, list[tuple[str, Any]]] = {}
    for package_name in TOOLKIT_PACKAGES:
        package = importlib.import_module(package_name)
        if hasattr(package, "__all__"):
            modules[package_name] = [(n, getattr(package, n)) for n in package.__all__
                                     if inspect.isfunction(getattr(package, n)) or inspect.isclass(getattr(package, n))]
            continue
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package_name}.{info.name}")
            own = [(n, o) for n, o in vars(module).items() if not n.startswith("_")
                   and (inspect.isfunction(o) or inspect.isclass(o)) and o.__module__ == module.__name__]
            if own:
                modules[module.__name__] = own
    return modules


def _signature(name: str, obj: Any) -> str:
    try:
        try:  # annotations as the types they name, not as the strings postponed evaluation keeps
            signature = inspect.signature(obj, eval_str=True)
        except NameError:  # a name only imported for type checking
            signature = inspect.signature(obj)
    except (TypeError, ValueError):  # some classes (C extensions) have no signature
        return name
    # Types by their own names (Volume, ndarray), as the reader imports them, not by their defining module.
    return QUALIFIED.sub(r"\1", f"{name}{signature}").replace("NoneType", "None")


def _doc(obj: Any, lines: int | None) -> str:
    doc = inspect.getdoc(obj) or ""
    if not doc or (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")):  # a dataclass's generated doc
        return "(no docstring)"
    kept = doc.strip().split("\n\n")[0].splitlines() if lines else doc.splitlines()
    return "\n".join(kept[:lines] if lines else kept)


def _entry(module: str, name: str, obj: Any, lines: int | None) -> str:
    kind = "class " if inspect.isclass(obj) else ""
    text = f"{kind}{module}.{_signature(name, obj)}\n" + "\n".join(f"    {line}" for line in _doc(obj, lines).splitlines())
    if inspect.isclass(obj) and lines is None:  # a class asked for by name: its public methods too
        for method_name, method in vars(obj).items():
            if not method_name.startswith("_") and inspect.isfunction(method):
                text += f"\n    .{_signature(method_name, method)}: {_doc(method, 1)}"
    return text


def toolkit_reference(module: str | None = None, name: str | None = None) -> str:
    """The toolkit's public API: an index of modules (no argument), one module's functions and classes
    with their signatures and first docstring lines, or one name's signature and whole docstring.

    Raises LookupError (with what exists) for a module or name that is not part of the toolkit.
    """
    modules = toolkit_modules()
    if name:
        hits = [(m, n, o) for m, entries in modules.items() if module is None or f".{module}." in f".{m}."
                for n, o in entries if n == name or f"{m}.{n}" == name]
        if not hits:
            raise LookupError(f"no toolkit function or class named {name!r}; call toolkit_reference with a module "
                              f"({', '.join(modules)}) to list what there is")
        return "\n\n".join(_entry(m, n, o, None) for m, n, o in hits)
    if module:
        matches = [m for m in modules if f".{module}." in f".{m}."]  # a module, or a package's modules
        if not matches:
            raise LookupError(f"no toolkit module {module!r}; the modules are: {', '.join(modules)}")
        return "\n\n".join(_entry(m, n, o, DOC_LINES) for m in matches for n, o in modules[m])
    lines = ["The toolkit the kernel can import (ask for a module or a name for signatures and docstrings):"]
    for m, entries in modules.items():
        summary = (inspect.getdoc(importlib.import_module(m)) or "").splitlines()[0:1]
        lines.append(f"- {m}: {summary[0] if summary else ''}\n    " + ", ".join(n for n, _ in entries))
    return "\n".join(lines)


def proposal_text(plan) -> str:
    """The offline planner's plan as a model reads it: the settings table, then every step in order."""
    lines = [plan.markdown(), "", "Steps, in order (adopt, change or ignore them; cells run with add_cell, renders "
             "with the render tool, judgements with the judge tool):"]
    for number, step in enumerate(plan.cells(), 1):
        lines.append(f"\n{number}. [{step['tool']}] {step['name']}: {step['note']}")
        if step["tool"] == "cell":
            lines.append("```python\n" + step["source"].rstrip() + "\n```")
        elif step.get("arguments"):
            lines.append("arguments: " + ", ".join(f"{k}={v}" for k, v in step["arguments"].items()))
    return "\n".join(lines)
