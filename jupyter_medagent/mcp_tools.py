"""medagent's tools (``toolset``) as MCP tools, for ``medagent mcp`` and for Jupyter AI's MCP server.

jupyter-server-mcp (0.3 and 0.4) registers the functions the ``jupyter_server_mcp.tools`` entry point lists as
``"module:function"`` strings; each function here has the toolset function's signature and docstring (its MCP
schema and description), runs it in a worker thread (a training ``solve`` must not hold up the Jupyter server's
event loop, nor a stdio server's replies), and answers MCP content: the text, the JSON, PNG images.
"""

from __future__ import annotations

import base64
import contextvars
import functools
import inspect
import json
from typing import Any
from collections.abc import Callable

import anyio
from mcp.types import ContentBlock, ImageContent, TextContent

from jupyter_medagent import toolset


def content(answer: toolset.Answer) -> list[ContentBlock]:
    blocks: list[ContentBlock] = [TextContent(type="text", text=answer.text)]
    if answer.data:
        blocks.append(TextContent(type="text", text=json.dumps(answer.data, indent=1, default=str)))
    blocks += [ImageContent(type="image", data=base64.b64encode(png).decode("ascii"), mimeType="image/png")
               for png in answer.images]
    return blocks


def mcp_tool(function: Callable[..., toolset.Answer]) -> Callable[..., Any]:
    signature = inspect.signature(function, eval_str=True)
    parameters = signature.parameters.values()

    @functools.wraps(function)
    async def tool(**arguments) -> list[ContentBlock]:
        # A fresh context: the worker must not inherit jupyter_core's event-loop context variable, which in a
        # Jupyter server names the server's running loop (starting a kernel there would fail).
        call = functools.partial(contextvars.Context().run, function, **arguments)
        return content(await anyio.to_thread.run_sync(call))

    # The arguments' types make the schema; no return annotation, so no structured-output schema is derived.
    tool.__signature__ = signature.replace(return_annotation=inspect.Signature.empty)
    tool.__annotations__ = {p.name: p.annotation for p in parameters}
    del tool.__wrapped__  # schema builders that follow it would read the Answer return type
    return tool


inspect_data = mcp_tool(toolset.inspect_data)
check_pair = mcp_tool(toolset.check_pair)
render = mcp_tool(toolset.render)
propose_plan = mcp_tool(toolset.propose_plan)
toolkit_reference = mcp_tool(toolset.toolkit_reference)
solve = mcp_tool(toolset.solve)
TOOLS = (inspect_data, check_pair, render, propose_plan, toolkit_reference, solve)


def jupyter_server_tools() -> list[str]:
    """What the ``jupyter_server_mcp.tools`` entry point gives jupyter-server-mcp: the tools as
    ``module:function`` strings."""
    return [f"{__name__}:{tool.__name__}" for tool in TOOLS]
