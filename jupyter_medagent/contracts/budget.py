"""Budgets for one run: turns, wall time, tokens and money. The loop stops cleanly at the first one spent.

``max_steps`` counts the model's turns (replies), not its tool calls: a reply that calls three tools in
parallel is one step, so parallel calls cost no more of the budget than the same calls made one by one
would save in replies. The model is told this in its progress line."""

from __future__ import annotations

from dataclasses import dataclass

from jupyter_medagent.contracts.options import RunOptions


class BudgetExceeded(Exception):
    """Raised by a backend that would overspend (e.g. money) before it calls a model."""


@dataclass
class Budget:
    max_steps: int = RunOptions.max_steps  # model turns, each however many tool calls it makes
    max_seconds: float = 3600.0
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    max_malformed: int = 3  # consecutive malformed model turns before giving up

    def exceeded(self, steps: int, seconds: float, tokens: int, cost_usd: float) -> str | None:
        if steps >= self.max_steps:
            return f"step budget spent ({steps} of {self.max_steps} steps; a step is one model turn)"
        if seconds >= self.max_seconds:
            return f"time budget spent ({seconds:.0f} s of {self.max_seconds:.0f} s)"
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return f"token budget spent ({tokens} of {self.max_tokens} tokens)"
        if self.max_cost_usd is not None and cost_usd >= self.max_cost_usd:
            return f"money budget spent (${cost_usd:.2f} of ${self.max_cost_usd:.2f})"
        return None
