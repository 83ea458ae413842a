"""Write labextension/src/events.generated.ts: the agent's events as TypeScript types, from the Python dataclasses.

One interface per event kind (its fields with their types) and ``AgentEvent``, their discriminated union on
``kind``, so renaming or retyping a field in Python breaks the sidebar's build instead of the sidebar.
Run it after changing an event; ``--check`` exits 1 while the committed file is stale
(tests/lab/test_event_types.py runs that check).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
import types
import typing
from pathlib import Path
from typing import Any

from jupyter_medagent.contracts import events as events_module

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "labextension" / "src" / "events.generated.ts"
SOURCE = events_module.__name__.replace(".", "/") + ".py"

SCALARS = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null",
           bytes: "string"}  # bytes travel as base64 text (Event.to_json)


def ts_type(annotation: Any) -> str:
    """The TypeScript type of a (resolved) Python annotation."""
    if annotation is Any:
        return "any"
    if annotation in SCALARS:
        return SCALARS[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(f"'{value}'" for value in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(ts_type(arg) for arg in args)
    if origin is list:
        item = ts_type(args[0])
        return f"({item})[]" if "|" in item else f"{item}[]"
    if origin is dict:
        return f"Record<{ts_type(args[0])}, {ts_type(args[1])}>"
    raise TypeError(f"{SOURCE}: no TypeScript type for the annotation {annotation!r}; add it to ts_type()")


def event_classes() -> list[type]:
    """The concrete event classes, in the order the module defines them."""
    return [cls for cls in vars(events_module).values()
            if inspect.isclass(cls) and issubclass(cls, events_module.Event) and cls is not events_module.Event]


def interface(cls: type) -> str:
    hints = typing.get_type_hints(cls)
    kind = next(f.default for f in dataclasses.fields(cls) if f.name == "kind")
    summary = " ".join(inspect.getdoc(cls).split("\n\n")[0].split())
    lines = [f"/** {summary} */", f"export interface I{cls.__name__}Event extends IEventBase {{", f"  kind: '{kind}';"]
    for f in dataclasses.fields(cls):
        if f.name == "kind":
            continue
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        # A field with a default may be missing from events an older version kept in a saved notebook's output.
        lines.append(f"  {f.name}{'?' if has_default else ''}: {ts_type(hints[f.name])};")
    lines.append("}")
    return "\n".join(lines)


def render() -> str:
    classes = event_classes()
    header = (f"// Generated from {SOURCE} by scripts/generate_event_types.py: do not edit.\n"
              "// Run `python scripts/generate_event_types.py` after changing an event\n"
              "// (tests/lab/test_event_types.py fails while this file is stale).\n\n"
              "export interface IEventBase {\n"
              "  seq: number; // its place in the run's events (the server and the magic's comm number them)\n"
              "}\n")
    union = "export type AgentEvent =\n" + "\n".join(f"  | I{cls.__name__}Event" for cls in classes) + ";\n"
    return header + "\n" + "\n\n".join(interface(cls) for cls in classes) + "\n\n" + union + \
        "\nexport type AgentEventKind = AgentEvent['kind'];\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is not what this writes")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python scripts/generate_event_types.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
