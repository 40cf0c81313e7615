"""Run a scenario against the real MCP server through the SDK's own client, in memory, in
either protocol era the SDK speaks ('legacy': initialize handshake over JSON-RPC streams;
'auto': the 2026 per-request path)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

from mcp import Client

from server.mcp import build_mcp_server
from server.mcp_toolbox import McpToolbox
from server.resources import build_resources

from .test_http_chat import settings_for

MODES = ["legacy", "auto"]
T = TypeVar("T")
Scenario = Callable[[Client, McpToolbox], Awaitable[T]]


def with_mcp(
    data_dir: Path,
    scenario: Scenario[T],
    *,
    mode: str = "legacy",
    model: Any = None,
    **settings: Any,
) -> T:
    """Build resources over data_dir, the toolbox (with a runner on `model` when given: else
    `ask` opens the configured one), the server and a client; run the scenario."""

    async def main() -> T:
        resources = build_resources(settings_for(data_dir, **settings))
        async with AsyncExitStack() as stack:
            stack.callback(resources.close)
            runner = None
            if model is not None:
                from server.agent_runtime import open_runner

                runner = await stack.enter_async_context(
                    open_runner(resources, model_factory=lambda spec: model)
                )
            toolbox = McpToolbox(resources, runner=runner)
            stack.push_async_callback(toolbox.aclose)
            server = build_mcp_server(toolbox)
            async with Client(server, mode=mode) as client:
                return await scenario(client, toolbox)

    return asyncio.run(main())


def text_of(result: Any) -> str:
    """The text blocks of a tool result, joined."""
    return "\n".join(getattr(block, "text", "") for block in result.content)


def digest(path: Path) -> str:
    """SHA-256 of a database file (and its WAL, if any): proof nothing was written."""
    h = hashlib.sha256(path.read_bytes())
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        h.update(wal.read_bytes())
    return h.hexdigest()
