"""Local HTTP servers that speak the Anthropic Messages and OpenAI Chat Completions wire protocols,
so the real SDK clients are exercised end to end without a hosted model.

A server replays a script: each entry is a reply (or a callable taking the request body and
returning one). Replies are built with the helpers below; every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from collections.abc import Callable


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON body, or a list of (event, data) pairs for server-sent events
    stream: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class WireServer:
    def __init__(self, script: list[Reply | Callable[[dict], Reply]]):
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                server.requests.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = server.script.pop(0) if server.script else Reply(500, {"error": {"message": "script exhausted"}})
                reply = reply(body) if callable(reply) else reply
                time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    if reply.stream:
                        self.send_header("content-type", "text/event-stream")
                        self.end_headers()
                        for event, data in reply.body:
                            self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                            self.wfile.flush()
                    else:
                        payload = json.dumps(reply.body).encode()
                        self.send_header("content-type", "application/json")
                        self.send_header("content-length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (time-out tests)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------------------------------ Anthropic
def anthropic_reply(*, text: str = "", tool: tuple[str, dict] | None = None, raw_json: str | None = None,
                    usage: dict[str, int] | None = None, tool_id: str = "toolu_1",
                    tools: list[tuple[str, dict]] | None = None) -> Reply:
    """A streamed Messages reply: optional text, optional tool_use (``raw_json`` sends broken JSON), or several
    tool_use blocks in one reply (``tools``, with ids ``{tool_id}_0``, ``{tool_id}_1``, ...)."""
    usage = {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
             **(usage or {})}
    start_usage = {**usage, "output_tokens": 1}
    events = [("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": start_usage}})]
    index = 0
    if text:
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                "content_block": {"type": "text", "text": ""}}))
        for piece in (text[: len(text) // 2], text[len(text) // 2:]):
            events.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                    "delta": {"type": "text_delta", "text": piece}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    blocks = [(tool_id, tool[0], raw_json if raw_json is not None else json.dumps(tool[1]))] if tool else []
    blocks += [(f"{tool_id}_{i}", name, json.dumps(arguments)) for i, (name, arguments) in enumerate(tools or [])]
    tool = tool or (tools[0] if tools else None)
    for block_id, name, partial in blocks:
        events.append(("content_block_start", {"type": "content_block_start", "index": index,
                                                "content_block": {"type": "tool_use", "id": block_id, "name": name, "input": {}}}))
        events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
            "type": "input_json_delta", "partial_json": partial}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    events.append(("message_delta", {"type": "message_delta", "delta": {
        "stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None}, "usage": {"output_tokens": usage["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return Reply(body=events, stream=True)


def anthropic_error(status: int, message: str, **headers: str) -> Reply:
    kind = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error"}.get(status, "api_error")
    return Reply(status, {"type": "error", "error": {"type": kind, "message": message}}, headers=headers)


# ------------------------------------------------------------------------------------ OpenAI
def openai_reply(*, text: str | None = None, tool: tuple[str, dict] | None = None, raw_arguments: str | None = None,
                 usage: dict[str, int] | None = None, cached: int = 0, call_id: str = "call_1",
                 tools: list[tuple[str, dict]] | None = None) -> Reply:
    """A Chat Completions reply: optional text, one tool call (``tool``) or several in parallel (``tools``,
    with ids ``{call_id}_0``, ``{call_id}_1``, ...)."""
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool:
        message["tool_calls"] = [{"id": call_id, "type": "function", "function": {
            "name": tool[0], "arguments": raw_arguments if raw_arguments is not None else json.dumps(tool[1])}}]
    if tools:
        message["tool_calls"] = [{"id": f"{call_id}_{i}", "type": "function", "function": {
            "name": name, "arguments": json.dumps(arguments)}} for i, (name, arguments) in enumerate(tools)]
        tool = tools[0]
    usage = {"prompt_tokens": 100, "completion_tokens": 20, **(usage or {})}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return Reply(body={"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "local-test",
                       "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}],
                       "usage": usage})


def openai_error(status: int, message: str, **headers: str) -> Reply:
    return Reply(status, {"error": {"message": message, "type": "invalid_request_error", "code": None}}, headers=headers)
