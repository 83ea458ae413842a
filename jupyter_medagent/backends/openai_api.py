"""The OpenAI-compatible backend: OpenAI itself, vLLM, LM Studio, Ollama's and llama.cpp's servers.

Native tool calls and image parts where the server takes them; when it refuses tools the
backend switches to a text protocol (one JSON tool call in a fenced block), and when it
refuses images they are described in words instead. Retries are the SDK's own.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from collections.abc import Callable

from jupyter_medagent.agent.protocols import AgentView, ModelTurn, TokenUsage, ToolCall
from jupyter_medagent.backends.conversation import (FENCED, NO_CALL, estimate_tokens, exchanges, opening,
                                                    parse_text_tool_call, progress, text_protocol, turn_groups)
from jupyter_medagent.backends.pricing import PriceTable
from jupyter_medagent.contracts.errors import BackendError

OPENAI_URL = "https://api.openai.com/v1"


class OpenAIBackend:
    name = "openai"
    streams = False

    def __init__(self, model: str, *, api_key: str, base_url: str = OPENAI_URL, max_tokens: int = 4096,
                 timeout: float = 120.0, max_retries: int = 4, prices: PriceTable | None = None,
                 tools: bool = True, images: bool = True):
        import openai

        self.model, self.base_url, self.max_tokens = model, base_url, max_tokens
        self.native_tools, self.images = tools, images
        self.prices = prices or PriceTable.load()
        self.last_prompt_tokens = 0
        self.notice = self.prices.notice(model)
        self.client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)

    # ------------------------------------------------------------------ requests
    def request(self, view: AgentView) -> dict[str, Any]:
        system = view.system_prompt if self.native_tools else f"{view.system_prompt}\n\n{text_protocol(view.tools)}"
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}, {"role": "user", "content": opening(view)}]
        for group in turn_groups(exchanges(view)):
            first = group[0]
            if first.plain:
                messages.append({"role": "assistant", "content": NO_CALL})
                messages.append({"role": "user", "content": first.result})
                continue
            if self.native_tools:  # one assistant message per turn, its calls' results right after it
                messages.append({"role": "assistant", "content": None, "tool_calls": [{
                    "id": e.call.id, "type": "function",
                    "function": {"name": e.call.name, "arguments": json.dumps(e.call.arguments)}} for e in group]})
                for e in group:
                    messages.append({"role": "tool", "tool_call_id": e.call.id,
                                     "content": ("ERROR: " if e.is_error else "") + (e.result or "(no output)")})
            else:  # one call per reply in the text protocol (a turn made before a fallback may hold several)
                for e in group:
                    messages.append({"role": "assistant", "content": "```json\n" + json.dumps(
                        {"tool": e.call.name, "arguments": e.call.arguments}) + "\n```"})
                    messages.append({"role": "user", "content": f"Result of {e.call.name}"
                                     f"{' (error)' if e.is_error else ''}:\n{e.result}"})
            # Tool messages cannot carry images: each call's follow its results, named by the call that made them.
            for e in group:
                if e.images:
                    messages.append({"role": "user", "content": self.image_parts(
                        e.images, f"Image(s) from {e.call.name} (call {e.call.id}): {_first_line(e.result)}")})
        messages.append({"role": "user", "content": progress(view)})
        request = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens}
        if self.native_tools:
            request["tools"] = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                                   "parameters": t["input_schema"]}} for t in view.tools]
        return request

    def image_parts(self, images: list[bytes], caption: str) -> Any:
        if not self.images:
            return f"{caption}: {len(images)} rendered montage(s) not shown (this server takes no images)."
        return [{"type": "text", "text": caption}] + [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(p).decode("ascii")}}
            for p in images]

    def next_turn(self, view: AgentView, on_text: Callable[[str], None] | None = None) -> ModelTurn:
        request = self.request(view)
        # The estimate cannot see the server's tokenizer; the last real prompt size bounds it from below.
        prompt = max(estimate_tokens(request), int(1.25 * self.last_prompt_tokens))
        self.prices.refuse_overspend(self.model, view, prompt, self.max_tokens)
        reply = self.call(request, lambda: self.request(view))
        message = reply.choices[0].message if reply.choices else None
        if message is None:
            raise BackendError(f"{self.model} at {self.base_url} returned no choices")
        text = (message.content or "").strip()
        calls = []
        for i, tc in enumerate(message.tool_calls or []):
            try:
                arguments = json.loads(tc.function.arguments or "{}")
            except ValueError as exc:
                arguments = {"__parse_error__": f"{exc}: {tc.function.arguments[:200]}"}
            if not isinstance(arguments, dict):
                arguments = {"__parse_error__": "arguments must be a JSON object"}
            calls.append(ToolCall(tc.function.name, arguments, tc.id or f"call_{view.step}_{i}"))
        if not calls:  # text-only servers, and models that write the call as text
            call = parse_text_tool_call(text, f"call_{view.step}")
            calls = [call] if call else []
        return ModelTurn(text=text, tool_calls=calls, usage=self.usage(reply.usage))

    def ask_structured(self, system: str, text: str, images: list[bytes],
                       schema: dict[str, Any]) -> tuple[dict[str, Any], TokenUsage]:
        """A JSON answer following ``schema`` (the VLM judge's verdict), through a forced function call when
        the server has tools, else through the text protocol."""
        content = self.image_parts(images, text) if images else text
        request: dict[str, Any] = {"model": self.model, "max_tokens": 1500, "messages": [
            {"role": "system", "content": system if self.native_tools else
             f"{system}\n\nReply with one JSON object in a ```json fenced block, following this schema: {json.dumps(schema)}"},
            {"role": "user", "content": content}]}
        if self.native_tools:
            request["tools"] = [{"type": "function", "function": {"name": "report", "description": "Report the answer.",
                                                                   "parameters": schema}}]
            request["tool_choice"] = {"type": "function", "function": {"name": "report"}}
        reply = self.call(request, None)
        message = reply.choices[0].message
        raw = message.tool_calls[0].function.arguments if message.tool_calls else _json_block(message.content or "")
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise BackendError(f"{self.model} gave no structured answer: {exc}") from exc
        if not isinstance(answer, dict):
            raise BackendError(f"{self.model} gave no structured answer")
        return answer, self.usage(reply.usage)

    # ------------------------------------------------------------------ plumbing
    def call(self, request: dict[str, Any], rebuild: Callable[[], dict[str, Any]] | None):
        """One completion; on a 400 that names tools or images, fall back once and rebuild the request."""
        import openai

        try:
            return self.client.chat.completions.create(**request)
        except openai.BadRequestError as exc:
            message = str(exc).lower()
            if self.native_tools and "tool" in message:
                self.native_tools = False
            elif self.images and "image" in message:
                self.images = False
            else:
                raise BackendError(f"{self.base_url} refused the request (HTTP 400): {exc}") from exc
            return self.call(rebuild() if rebuild else request, rebuild)
        except openai.APITimeoutError as exc:
            raise BackendError(f"{self.model} at {self.base_url} did not answer in time (after retries)") from exc
        except openai.APIConnectionError as exc:
            raise BackendError(f"cannot reach the OpenAI-compatible server at {self.base_url}: {exc}") from exc
        except openai.APIStatusError as exc:
            raise BackendError(f"{self.base_url} refused the request (HTTP {exc.status_code}): {exc}") from exc

    def usage(self, raw) -> TokenUsage:
        if raw is None:
            return TokenUsage()
        details = getattr(raw, "prompt_tokens_details", None)
        cached = (getattr(details, "cached_tokens", 0) or 0) if details else 0
        usage = TokenUsage((raw.prompt_tokens or 0) - cached, raw.completion_tokens or 0, cached, 0)
        usage.cost_usd = self.prices.cost(self.model, usage)
        self.last_prompt_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        return usage


def _json_block(text: str) -> str:
    match = FENCED.search(text)
    if match:
        return match.group(1)
    start, end = text.find("{"), text.rfind("}")
    return text[start:end + 1] if 0 <= start < end else "null"


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0][:200]
