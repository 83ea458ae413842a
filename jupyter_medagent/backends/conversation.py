"""What model backends send: the agent's view turned into a provider-neutral conversation.

The order is chosen for prompt caching: system prompt and tool schemas, then the request,
then the steps (the pinned data card first among them), and only at the very end what
changes every turn (step counter, the notebook's cells). Images are downsampled and only
the most recent ones are sent; raw volumes and DICOM tags never reach a model.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from jupyter_medagent.agent.protocols import AgentView, ToolCall

IMAGE_STEPS = 2  # steps whose images are still sent (older ones are described in words)
MAX_IMAGE_SIDE = 768  # px; a montage stays legible and costs ~500 image tokens


TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what both APIs accept as a tool name
NO_CALL = "(your reply called no tool)"


@dataclass
class Exchange:
    """One tool call the model made and what came back."""

    call: ToolCall
    result: str
    images: list[bytes] = field(default_factory=list)  # PNG, downsampled
    is_error: bool = False

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
    return f"Step {view.step + 1} of at most {view.max_steps}. Notebook cells: {cells}."


def exchanges(view: AgentView) -> list[Exchange]:
    with_images = [i for i, s in enumerate(view.history) if s.observation.images][-IMAGE_STEPS:]
    out = []
    for i, step in enumerate(view.history):
        call = step.call if step.call.id else ToolCall(step.call.name, step.call.arguments, f"call_{i}")
        images = [downsample(png) for png in step.observation.images] if i in with_images else []
        out.append(Exchange(call, step.observation.text, images, step.observation.is_error))
    return out


def downsample(png: bytes, max_side: int = MAX_IMAGE_SIDE) -> bytes:
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    if max(image.size) <= max_side:
        return png
    image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


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
