"""Approve-each-cell on a console (the CLI, and the magic: widget clicks cannot reach a busy kernel)."""

from __future__ import annotations


def ask_on_console(cell_id: str, source: str, concerns: list[str] = ()) -> tuple[str, str]:
    """Approve-each-cell through input(): widget clicks cannot reach a kernel that is busy running the magic."""
    print(f"--- cell {cell_id} ---\n{source}\n---")
    for concern in concerns:
        print(f"Safety gate: this cell {concern}")
    while True:
        answer = input("Run this cell? [r]un / [s]kip / [e]dit / s[t]op: ").strip().lower()
        if answer in ("", "r", "run"):
            return "run", source
        if answer in ("s", "skip"):
            return "skip", source
        if answer in ("t", "stop"):
            return "stop", source
        if answer in ("e", "edit"):
            print("Type the new code; finish with a line containing only END.")
            lines = []
            while (line := input()) != "END":
                lines.append(line)
            return "edit", "\n".join(lines)
