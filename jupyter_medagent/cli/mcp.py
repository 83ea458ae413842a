"""``medagent mcp``: medagent's imaging tools for any MCP client (Claude Code, Cursor, Goose...) over stdio."""

from __future__ import annotations

import os
import sys

from jupyter_medagent.contracts.errors import MedagentError

INSTRUCTIONS = ("medagent's medical-imaging tools. inspect_data describes a folder of scans and its quality "
                "findings (call it first), check_pair judges one image/label pair, render shows slices with "
                "contours, propose_plan advises a pipeline, toolkit_reference lists the importable toolkit, solve "
                "runs the whole offline agent and writes a verified notebook. Paths must lie in the allowed folders.")


def register(subparsers) -> None:
    parser = subparsers.add_parser("mcp", help="serve medagent's tools to an MCP client over stdio")
    parser.add_argument("--allow", action="append", default=[], metavar="DIR",
                        help="a folder the tools may read and write in (repeatable; default: the working directory)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from jupyter_medagent import toolset

    toolset.allow_folders(args.allow or [os.getcwd()])
    try:
        from mcp.server.fastmcp import FastMCP
    except ImportError as exc:
        raise MedagentError(f"medagent mcp needs the MCP SDK: pip install 'jupyter_medagent[mcp]' ({exc})") from exc
    import anyio

    from jupyter_medagent.mcp_tools import TOOLS

    server = FastMCP("medagent", instructions=INSTRUCTIONS)
    for tool in TOOLS:
        server.add_tool(tool)
    protocol = _claim_stdout()
    print(f"medagent mcp: serving {len(TOOLS)} tools over stdio; allowed folders: "
          f"{', '.join(map(str, toolset.allowed_folders()))}", file=sys.stderr, flush=True)
    anyio.run(_serve, server, protocol)
    return 0


def _claim_stdout():
    """The protocol gets the process's stdout to itself; fd 1 then points at stderr, so what kernels, native
    libraries or a stray print write there cannot corrupt the JSON-RPC stream."""
    import anyio

    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return anyio.wrap_file(protocol)


async def _serve(server, protocol) -> None:
    from mcp.server.stdio import stdio_server

    # FastMCP.run_stdio_async would write to sys.stdout; the low-level server it wraps takes our stream.
    async with stdio_server(stdout=protocol) as (read_stream, write_stream):
        await server._mcp_server.run(read_stream, write_stream, server._mcp_server.create_initialization_options())
