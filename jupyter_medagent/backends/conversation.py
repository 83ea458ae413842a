"""What model backends send: the agent's view turned into a provider-neutral conversation.

The order is chosen for prompt caching: system prompt and tool schemas, then the request,
then the steps (the pinned data card first among them), and only at the very end what
changes every turn (turn counter, spending, the notebook's cells). The tool calls of one model
turn are replayed as one assistant message, as the model made them. Images are downsampled and
travel with the result of the call that made them, in the request right after that turn; later
requests say they were shown instead of sending them again. Raw volumes and DICOM tags never
reach a model.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from jupyter_medagent.agent.protocols import AgentView, ToolCall
from jupyter_medagent.imaging.render import downsample



TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what both APIs accept as a tool name
NO_CALL = "(your reply called no tool)"


@dataclass
class Exchange:
    """One tool call the model made and what came back."""

    call: ToolCall
    result: str
    images: list[bytes] = field(default_factory=list)  # PNG, downsampled
    is_error: bool = False
    turn: int | None = None  # calls of one model turn share it

    @property
    def plain(self) -> bool:
        """A turn without a usable tool call (none, or a name no API accepts): replayed as text, not as a call."""
        return not TOOL_NAME.match(self.call.name)


def opening(view: AgentView) -> str:
    lines = [f"Request: {view.task}"]
    lines.append(f"Data folder (read-only): {view.data_dir}" if view.data_dir else "No data folder was given.")
    if view.output_dir:
        lines.append(f"Output folder (the kernel's working directory; the only place cells may write): {view.output_dir}")
    return "\n".join(lines)


def progress(view: AgentView) -> str:
    cells = ", ".join(f"{c['id']} {c['status']}" for c in view.cells) or "none yet"
    tokens = f"{view.tokens:,} tokens" + (f" of {view.max_tokens:,}" if view.max_tokens else "")
    money = f"${view.cost_usd:.2f}" + (f" of ${view.max_cost_usd:.2f}" if view.max_cost_usd is not None else "")
    return (f"Turn {view.step + 1} of at most {view.max_steps} (a turn is one reply, however many tool calls it "
            f"makes). Spent so far: {tokens}, {money}. Notebook cells: {cells}.")


def exchanges(view: AgentView) -> list[Exchange]:
    """The history as exchanges; images only with the calls of the latest turn (the model has not seen them yet)."""
    turns = [s.turn if s.turn is not None else -i for i, s in enumerate(view.history)]
    latest = turns[-1] if turns else None
    out = []
    for i, step in enumerate(view.history):
        call = step.call if step.call.id else ToolCall(step.call.name, step.call.arguments, f"call_{i}")
        text, images = step.observation.text, []
        if step.observation.images and turns[i] == latest:
            images = [downsample(png) for png in step.observation.images]
        elif step.observation.images:
            text += f"\n({len(step.observation.images)} image(s) came with this result when it was new; not sent again)"
        out.append(Exchange(call, text, images, step.observation.is_error, step.turn))
    return out


def turn_groups(items: list[Exchange]) -> list[list[Exchange]]:
    """Consecutive tool calls of one model turn, together (a plain reply stands alone)."""
    groups: list[list[Exchange]] = []
    for exchange in items:
        last = groups[-1][-1] if groups else None
        if last is not None and not exchange.plain and not last.plain and exchange.turn is not None \
                and exchange.turn == last.turn:
            groups[-1].append(exchange)
        else:
            groups.append([exchange])
    return groups


def estimate_tokens(payload: Any) -> int:
    """A tokenizer-free estimate (no tokenizer files can be fetched here): ~3.5 characters per token for
    code and JSON, images by Anthropic's published rule width*height/750. Used for budget checks."""
    text_chars, image_tokens = 0, 0

    def walk(node: Any) -> None:
        nonlocal text_chars, image_tokens
        if isinstance(node, dict):
            if node.get("type") in ("image", "image_url"):
                image_tokens += _image_tokens(node)
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            text_chars += len(node)
        elif node is not None:
            text_chars += len(json.dumps(node))

    walk(payload)
    return int(text_chars / 3.5) + image_tokens


def _image_tokens(block: dict) -> int:
    import base64

    from PIL import Image

    data = block.get("source", {}).get("data") or block.get("image_url", {}).get("url", "").partition(",")[2]
    try:
        width, height = Image.open(io.BytesIO(base64.b64decode(data))).size
    except Exception:
        return 1600  # the provider's ceiling per image
    return max(1, width * height // 750)


# ---------------------------------------------------------------------------------- text-only tool protocol
TEXT_PROTOCOL = """
This server cannot call tools natively. To call a tool, reply with exactly one JSON object in a
```json fenced block: {"tool": "<tool name>", "arguments": {...}}. The tools are:
"""


def text_protocol(tools: list[dict[str, Any]]) -> str:
    lines = [TEXT_PROTOCOL.strip()]
    for tool in tools:
        params = tool["input_schema"].get("properties", {})
        required = set(tool["input_schema"].get("required", []))
        args = ", ".join(f"{k}{'' if k in required else '?'}: {v.get('type', 'any')}" for k, v in params.items())
        lines.append(f"- {tool['name']}({args}): {tool['description']}")
    return "\n".join(lines)


FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.S)


def parse_text_tool_call(text: str, call_id: str) -> ToolCall | None:
    """The tool call a text-only model wrote; ``__parse_error__`` when it tried and the JSON is broken."""
    candidates = FENCED.findall(text)
    if not candidates:
        start = text.find("{")
        if start < 0 or '"tool"' not in text:
            return None
        candidates = [text[start:text.rfind("}") + 1]]
    try:
        obj = json.loads(candidates[0])
    except ValueError as exc:
        return ToolCall("(unparsed)", {"__parse_error__": f"{exc}: {candidates[0][:200]}"}, call_id)
    if not isinstance(obj, dict) or "tool" not in obj:
        return ToolCall("(unparsed)", {"__parse_error__": 'expected {"tool": ..., "arguments": {...}}'}, call_id)
    arguments = obj.get("arguments") or {}
    if not isinstance(arguments, dict):
        arguments = {"__parse_error__": "arguments must be a JSON object"}
    return ToolCall(str(obj["tool"]), arguments, call_id)
