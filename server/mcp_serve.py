"""`sqlsage mcp`: the MCP server over stdio (Claude Desktop/Code launch it) or streamable HTTP
at /mcp (the same API keys as the chat server, Host/Origin checks, loopback by default), and
the pieces that mount it inside the main HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.auth import ApiKeys
from server.mcp_stdio import Serve, serve_on_wire
from tools.errors import INVALID_ARGUMENT, SqlsageError

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context, MCPServer

    from graphs.turns import TurnRunner
    from server.mcp_toolbox import McpToolbox
    from server.resources import Resources
    from server.settings import Settings

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
MCP_PATH = "/mcp"
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


@dataclass
class McpOptions:
    """What `sqlsage mcp` was asked for."""

    transport: str = "stdio"
    host: str = "127.0.0.1"
    port: int = 8001
    dbs: list[str] = field(default_factory=list)
    insecure_no_auth: bool = False
    config: Path | None = None


def quiet_sdk_logs() -> None:
    """The SDK logs each refused call at INFO; on stdio, logs go to stderr only, and only
    warnings (the client gets every error as a tool result anyway)."""
    for name in ("mcp", "mcp.server", "mcp.server.mcpserver", "mcp.server.lowlevel"):
        logging.getLogger(name).setLevel(logging.WARNING)


def owner_from_keys(keys: ApiKeys) -> Callable[[Context], str]:
    """The caller of an HTTP request (its key already passed BearerKeys), 'local' on stdio."""

    def owner(ctx: Context) -> str:
        headers = ctx.headers
        if not headers or not keys.enabled:
            return "local"
        principal = keys.authenticate(headers.get("authorization"), headers.get("x-api-key"))
        return principal.user

    return owner


def build_server(toolbox: McpToolbox, keys: ApiKeys) -> MCPServer:
    """The MCP server with sessions owned by the caller's key."""
    from server.mcp import build_mcp_server

    return build_mcp_server(toolbox, owner_of=owner_from_keys(keys))


class BearerKeys:
    """Pure ASGI guard in front of the MCP endpoint: a valid API key (Authorization: Bearer
    or X-API-Key), or 401 with a JSON error and a WWW-Authenticate challenge."""

    def __init__(self, app: ASGIApp, keys: ApiKeys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        from starlette.datastructures import Headers
        from starlette.responses import JSONResponse

        if scope["type"] != "http" or not self.keys.enabled:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            self.keys.authenticate(headers.get("authorization"), headers.get("x-api-key"))
        except SqlsageError as error:
            refusal = JSONResponse(
                {"error": error.to_dict()},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="sqlsage"'},
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


def transport_security(host: str, settings: Settings) -> Any:
    """DNS-rebinding protection: only Host headers naming this server (loopback, the bound
    address, SQLSAGE_ALLOWED_HOSTS) and Origins on loopback or in SQLSAGE_CORS_ORIGINS."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = list(LOOPBACK_HOSTS) + settings.allowed_host_list()
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        hosts.append(f"{host}:*")
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=LOOPBACK_ORIGINS + settings.cors_origin_list(),
    )


def http_app(server: MCPServer, keys: ApiKeys, *, host: str, settings: Settings) -> Any:
    """The streamable-HTTP Starlette app (route /mcp, session manager in its lifespan)."""
    inner = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(host, settings),
        host=host,
    )
    inner.add_middleware(BearerKeys, keys=keys)
    return inner


class MountedMcp:
    """The /mcp endpoint of the main HTTP server. The route exists from app creation; what
    serves it is built in the lifespan over the app's own resources and runner (`opened`),
    until then (and after) it answers 503."""

    def __init__(self) -> None:
        self.endpoint: ASGIApp | None = None

    @contextlib.asynccontextmanager
    async def opened(
        self, resources: Resources, runner: TurnRunner, keys: ApiKeys
    ) -> AsyncIterator[None]:
        """Serve MCP over the host's resources while the host runs."""
        from server.mcp_toolbox import McpToolbox

        toolbox = McpToolbox(resources, runner=runner)
        server = build_server(toolbox, keys)
        app = http_app(server, keys, host="0.0.0.0", settings=resources.settings)
        # The host's lifespan runs the session manager (a mounted app's own lifespan never runs).
        async with server.session_manager.run():
            self.endpoint = app
            try:
                yield
            finally:
                self.endpoint = None
                await toolbox.aclose()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self.endpoint is None:
            from starlette.responses import JSONResponse

            body = {"error": {"code": "internal_error", "message": "MCP is not running."}}
            await JSONResponse(body, status_code=503)(scope, receive, send)
            return
        await self.endpoint(scope, receive, send)


def _build_resources(settings: Settings) -> Resources:
    from server.resources import build_resources  # SQLAlchemy and sqlglot come with it

    resources = build_resources(settings)
    gc.freeze()  # what lives as long as the process stays out of the collector's walks
    return resources


@contextlib.asynccontextmanager
async def opened(
    settings: Settings, *, one_client: bool = False
) -> AsyncIterator[tuple[McpToolbox, ApiKeys]]:
    """The toolbox (its resources built on the first call) and keys for an MCP process of
    its own; `one_client` (stdio) lets SQLite queries start on the event loop."""
    from server.mcp_toolbox import open_toolbox

    build = functools.partial(_build_resources, settings)
    keys = ApiKeys.from_settings(settings)
    async with open_toolbox(build, inline_sqlite=one_client) as toolbox:
        yield toolbox, keys


async def serve_stdio(settings: Settings) -> None:
    """Serve MCP on stdin/stdout until the client closes it: on the event loop with a fast
    start (server/mcp_stdio.py) when stdin and stdout are pipes, else (a terminal, a file,
    SQLSAGE_MCP_STDIO=sdk) on the SDK's own thread-based transport."""
    quiet_sdk_logs()
    from server.mcp_stdio import StartSnapshot, StdioPipes, code_identity, snapshot_path

    pipes = StdioPipes.claim() if settings.mcp_stdio == "loop" else None
    if pipes is None:
        await _serve_stdio_sdk(settings)
        return
    snapshot = StartSnapshot.load(snapshot_path(), code_identity())
    ready = asyncio.ensure_future(asyncio.to_thread(_prepare_stdio, settings))
    try:
        await serve_on_wire(pipes, ready, snapshot)
    finally:
        pipes.restore()


def _prepare_stdio(settings: Settings) -> Serve:
    """In a worker thread while the wire answers from the start snapshot: import the SDK and
    build the server; the function that serves it over the wire's stdin/stdout (and closes
    what the toolbox opened)."""
    from mcp.server.stdio import stdio_server

    from server.mcp_toolbox import McpToolbox, close_toolbox

    toolbox = McpToolbox(build=functools.partial(_build_resources, settings), inline_sqlite=True)
    server = build_server(toolbox, ApiKeys.from_settings(settings))
    lowlevel = server._lowlevel_server  # what MCPServer.run_stdio_async runs, on our streams

    async def serve(stdin: Any, stdout: Any) -> None:
        # The SDK's and our modules live as long as the process: frozen out of the cyclic
        # collector, a full collection walks only what calls made since.
        gc.freeze()
        # The resources (SQLAlchemy, sqlglot, the registry) are built now, off the loop, so
        # the first tool call does not wait for them; a failure here is the first call's.
        warming = asyncio.ensure_future(_warm(toolbox))
        try:
            async with stdio_server(stdin=stdin, stdout=stdout) as (read, write):
                await lowlevel.run(read, write, lowlevel.create_initialization_options())
        finally:
            await warming
            await close_toolbox(toolbox)

    return serve


async def _warm(toolbox: McpToolbox) -> None:
    with contextlib.suppress(Exception):
        await toolbox.ready()


async def _serve_stdio_sdk(settings: Settings) -> None:
    async with opened(settings, one_client=True) as (toolbox, keys):
        server = build_server(toolbox, keys)
        # As above; no gc.collect() first: it would cost the cold start ~50 ms.
        gc.freeze()
        await server.run_stdio_async()


async def serve_http(settings: Settings, options: McpOptions) -> None:
    """Serve MCP over streamable HTTP at /mcp until interrupted."""
    import uvicorn

    quiet_sdk_logs()
    async with opened(settings) as (toolbox, keys):
        server = build_server(toolbox, keys)
        gc.freeze()
        app = http_app(server, keys, host=options.host, settings=settings)
        config = uvicorn.Config(
            app, host=options.host, port=options.port, log_config=None, lifespan="on"
        )
        await uvicorn.Server(config).serve()


def run_mcp(options: McpOptions) -> None:
    """`sqlsage mcp`: check the options, then serve on the chosen transport."""
    import anyio

    from server.serve import ServeOptions, check_dbs, check_serve, serve_env
    from server.settings import load_settings

    if options.transport not in ("stdio", "http"):
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Unknown transport '{options.transport}'.",
            hint="Use --transport stdio (Claude Desktop/Code) or --transport http.",
        )
    serve_options = ServeOptions(
        host=options.host,
        port=options.port,
        dbs=options.dbs,
        insecure_no_auth=options.insecure_no_auth,
        config=options.config,
    )
    os.environ.update(serve_env(serve_options))
    settings = load_settings(options.config)
    if options.transport == "http":
        check_serve(serve_options, settings)
    else:
        check_dbs(options.dbs, settings)
    if options.transport == "stdio":
        anyio.run(serve_stdio, settings)
        return
    shown = f"[{options.host}]" if ":" in options.host else options.host
    print(f"sqlsage MCP is serving on http://{shown}:{options.port}{MCP_PATH}", flush=True)
    anyio.run(serve_http, settings, options)
