"""The Anthropic backend: Claude through the official SDK, with tool use, images, prompt caching and streaming.

Retries with backoff on 429, 5xx, connection errors and time-outs are the SDK's own
(``max_retries``, honouring ``retry-after``). Before each call the money budget is checked
against a worst case, so a run never spends past it.
"""

from __future__ import annotations

import base64
from typing import Any
from collections.abc import Callable

from jupyter_medagent.agent.protocols import AgentView, ModelTurn, TokenUsage, ToolCall
from jupyter_medagent.backends.conversation import NO_CALL, estimate_tokens, exchanges, opening, progress, turn_groups
from jupyter_medagent.backends.pricing import PriceTable
from jupyter_medagent.contracts.errors import BackendError

CACHE = {"type": "ephemeral"}


class AnthropicBackend:
    name = "anthropic"
    streams = True

    def __init__(self, model: str, *, api_key: str, base_url: str | None = None, max_tokens: int = 4096,
                 timeout: float = 120.0, max_retries: int = 4, prices: PriceTable | None = None):
        import anthropic

        self.model, self.max_tokens = model, max_tokens
        self.prices = prices or PriceTable.load()
        self.last_prompt_tokens = 0
        self.notice = self.prices.notice(model)
        self.client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)

    # ------------------------------------------------------------------ requests
    def request(self, view: AgentView) -> dict[str, Any]:
        """The Messages API request for this view; cache breakpoints after the tools+system prefix and the data card."""
        messages: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": opening(view)}]}]
        for group in turn_groups(exchanges(view)):
            if group[0].plain:
                messages.append({"role": "assistant", "content": [{"type": "text", "text": NO_CALL}]})
                messages.append({"role": "user", "content": [{"type": "text", "text": group[0].result}]})
                continue
            # One assistant message per turn; each result carries the images its own call made.
            messages.append({"role": "assistant", "content": [
                {"type": "tool_use", "id": e.call.id, "name": e.call.name, "input": e.call.arguments} for e in group]})
            results = []
            for exchange in group:
                content: list[dict[str, Any]] = [{"type": "text", "text": exchange.result or "(no output)"}]
                content += [image_block(png) for png in exchange.images]
                result = {"type": "tool_result", "tool_use_id": exchange.call.id, "content": content,
                          "is_error": exchange.is_error}
                if exchange.call.name == "inspect_data":  # pinned: everything up to the data card is reused
                    result["cache_control"] = CACHE
                results.append(result)
            messages.append({"role": "user", "content": results})
        messages[-1]["content"].append({"type": "text", "text": progress(view)})
        return {"model": self.model, "max_tokens": self.max_tokens, "tools": view.tools, "messages": messages,
                "system": [{"type": "text", "text": view.system_prompt, "cache_control": CACHE}]}

    def next_turn(self, view: AgentView, on_text: Callable[[str], None] | None = None) -> ModelTurn:
        request = self.request(view)
        # The estimate cannot see the server's tokenizer; the last real prompt size bounds it from below.
        prompt = max(estimate_tokens(request), int(1.25 * self.last_prompt_tokens))
        self.prices.refuse_overspend(self.model, view, prompt, self.max_tokens)
        message = self.call(request, on_text)
        usage = self.usage(message.usage)
        text = "".join(b.text for b in message.content if b.type == "text").strip()
        calls = [ToolCall(b.name, b.input if isinstance(b.input, dict) else {"__parse_error__": str(b.input)}, b.id)
                 for b in message.content if b.type == "tool_use"]
        return ModelTurn(text=text, tool_calls=calls, usage=usage)

    def ask_structured(self, system: str, text: str, images: list[bytes],
                       schema: dict[str, Any]) -> tuple[dict[str, Any], TokenUsage]:
        """One forced tool call whose input follows ``schema`` (the VLM judge's structured verdict)."""
        tool = {"name": "report", "description": "Report the structured answer.", "input_schema": schema}
        request = {"model": self.model, "max_tokens": 1500, "system": [{"type": "text", "text": system, "cache_control": CACHE}],
                   "tools": [tool], "tool_choice": {"type": "tool", "name": "report"},
                   "messages": [{"role": "user", "content": [*(image_block(p) for p in images), {"type": "text", "text": text}]}]}
        message = self.call(request, None)
        block = next((b for b in message.content if b.type == "tool_use"), None)
        if block is None or not isinstance(block.input, dict):
            raise BackendError(f"{self.model} gave no structured answer")
        return block.input, self.usage(message.usage)

    # ------------------------------------------------------------------ plumbing
    def call(self, request: dict[str, Any], on_text: Callable[[str], None] | None):
        import anthropic

        try:
            with self.client.messages.stream(**request) as stream:
                for chunk in stream.text_stream:
                    if on_text and chunk:
                        on_text(chunk)
                return stream.get_final_message()
        except anthropic.APITimeoutError as exc:
            raise BackendError(f"{self.model} did not answer in time at {self.client.base_url} (after retries)") from exc
        except anthropic.APIConnectionError as exc:
            raise BackendError(f"cannot reach the Anthropic API at {self.client.base_url}: {exc}") from exc
        except anthropic.APIStatusError as exc:
            raise BackendError(f"the Anthropic API refused the request (HTTP {exc.status_code}): "
                               f"{getattr(exc, 'message', exc)}") from exc

    def usage(self, raw) -> TokenUsage:
        usage = TokenUsage(raw.input_tokens or 0, raw.output_tokens or 0,
                           getattr(raw, "cache_read_input_tokens", 0) or 0,
                           getattr(raw, "cache_creation_input_tokens", 0) or 0)
        usage.cost_usd = self.prices.cost(self.model, usage)
        self.last_prompt_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        return usage


def image_block(png: bytes) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                        "data": base64.b64encode(png).decode("ascii")}}
