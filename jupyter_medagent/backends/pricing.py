"""Money from token counts: a per-model price table (prices.json) the user can extend or override."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from jupyter_medagent.contracts.budget import BudgetExceeded
from jupyter_medagent.agent.protocols import AgentView, TokenUsage
from jupyter_medagent.contracts.errors import ConfigError

FIELDS = ("input", "output", "cache_write", "cache_read")  # USD per million tokens


class PriceTable:
    def __init__(self, prices: dict[str, dict[str, float]]):
        self.prices = prices

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None) -> PriceTable:
        """Shipped prices, then MEDAGENT_PRICES (a JSON file), then the config file's [prices] tables."""
        prices = json.loads(resources.files("jupyter_medagent.backends").joinpath("prices.json").read_text())
        prices.pop("_comment", None)
        path = os.environ.get("MEDAGENT_PRICES")
        if path:
            try:
                prices.update(json.loads(Path(path).read_text()))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"MEDAGENT_PRICES={path}: cannot read a JSON price table ({exc})") from exc
        prices.update(overrides or {})
        for model, row in prices.items():
            unknown = set(row) - set(FIELDS)
            if unknown or not all(isinstance(row.get(f, 0), (int, float)) for f in FIELDS):
                raise ConfigError(f"price of {model!r}: expected numbers for {', '.join(FIELDS)} (USD per million "
                                  f"tokens), got {row}")
        return cls(prices)

    def price(self, model: str) -> dict[str, float] | None:
        """Exact name first, then the longest known prefix (dated model names share their family's price)."""
        if model in self.prices:
            return self.prices[model]
        family = max((m for m in self.prices if model.startswith(m)), key=len, default=None)
        return self.prices[family] if family else None

    def notice(self, model: str) -> str | None:
        """What the user should know before the run when the model has no price."""
        if self.price(model) is not None:
            return None
        return (f"No price is known for {model}: its spending shows as $0 and the money budget cannot protect you. "
                f"Add a [prices.\"{model}\"] table to the config file or a MEDAGENT_PRICES file.")

    def cost(self, model: str, usage: TokenUsage) -> float:
        row = self.price(model)
        if row is None:
            return 0.0
        per = {f: row.get(f, row.get("input", 0.0)) for f in FIELDS}
        return (usage.input_tokens * per["input"] + usage.output_tokens * per["output"]
                + usage.cache_write_tokens * per["cache_write"] + usage.cache_read_tokens * per["cache_read"]) / 1e6

    def worst_case(self, model: str, prompt_tokens: int, max_output_tokens: int) -> float:
        """An upper bound for one call before it is made (the whole prompt uncached, the longest reply)."""
        row = self.price(model) or {}
        return (prompt_tokens * max(row.get("input", 0.0), row.get("cache_write", 0.0))
                + max_output_tokens * row.get("output", 0.0)) / 1e6

    def refuse_overspend(self, model: str, view: AgentView, prompt_tokens: int, max_output_tokens: int) -> None:
        """The money budget's hard stop: raise before a call whose worst case would pass it."""
        if view.max_cost_usd is None:
            return
        if self.price(model) is None:
            raise BudgetExceeded(f"money budget: no price is known for {model}, so the budget cannot be kept; "
                                 "add its price to the config file")
        worst = self.worst_case(model, prompt_tokens, max_output_tokens)
        if view.cost_usd + worst > view.max_cost_usd:
            raise BudgetExceeded(f"money budget: the next call could cost up to ${worst:.4f}, which would pass "
                                 f"${view.max_cost_usd:.2f} (spent ${view.cost_usd:.4f})")
