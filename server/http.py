"""The HTTP app: FastAPI with the chat SSE API, sessions, traces, feedback, export, metrics.

`create_app(settings)` builds it; `create_app_from_env()` is uvicorn's factory for
`sqlsage serve --workers N` (each worker reads the same settings from the environment).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import api_chat, api_data, api_ops, api_sessions, request_context
from server.api_models import ErrorResponse
from server.app_state import open_app_state
from server.chat_service import RetryLater
from server.logs import get_logger
from server.mcp_serve import MCP_PATH, MountedMcp
from server.settings import Settings, load_settings
from tools.errors import (
    BUDGET_EXHAUSTED,
    DATABASE_UNREACHABLE,
    FORBIDDEN,
    INTERNAL_ERROR,
    INVALID_ARGUMENT,
    MODEL_UNAVAILABLE,
    NOT_FOUND,
    RATE_LIMITED,
    SESSION_BUSY,
    TOO_LARGE,
    UNAUTHORIZED,
    SqlsageError,
)

STATUS = {
    NOT_FOUND: 404,
    UNAUTHORIZED: 401,
    FORBIDDEN: 403,
    RATE_LIMITED: 429,
    BUDGET_EXHAUSTED: 429,
    SESSION_BUSY: 409,
    TOO_LARGE: 413,
    DATABASE_UNREACHABLE: 503,
    MODEL_UNAVAILABLE: 503,
    INTERNAL_ERROR: 500,
}
log = get_logger("http")
access_log = get_logger("access")
SERVER_GC_THRESHOLDS = (20_000, 50, 50)


def error_response(error: SqlsageError, status: int | None = None) -> JSONResponse:
    """The JSON error body with its status (and Retry-After for refusals that pass)."""
    headers = {}
    if isinstance(error, RetryLater):
        headers["Retry-After"] = str(max(1, round(error.retry_after_s + 0.5)))
    return JSONResponse(
        {"error": error.to_dict()},
        status_code=status or STATUS.get(error.code, 400),
        headers=headers,
    )


class RequestContextMiddleware:
    """Request id (X-Request-ID in and out), body size limit, access log and route metrics."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap one HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        # An id to find log lines by, not a secret: no urandom syscall (it gives up the GIL,
        # and a busy worker thread keeps it for up to 5 ms) on every request.
        rid = incoming if incoming.isprintable() and incoming else f"{random.getrandbits(64):016x}"
        request_context.request_id.set(rid)
        request_context.user_id.set(None)
        request_context.session_id.set(None)
        started = time.perf_counter()
        status = {"code": 500, "at": 0.0}
        limit = self.max_body_bytes

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["at"] = message["status"], time.perf_counter()
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._too_large(scope, receive, send_wrapped, length)
        elif length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            # A chunked body has no length to check up front: read it (up to the limit)
            # before the app sees it, then hand it over as one message.
            body, seen, more = b"", 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > limit:
                    await self._too_large(scope, receive, send_wrapped, f"over {limit}".encode())
                    self._finish(scope, status, started)
                    return
                body += chunk
                more = message.get("more_body", False)
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_wrapped)
        else:
            await self.app(scope, receive, send_wrapped)
        self._finish(scope, status, started)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, length: bytes) -> None:
        error = SqlsageError(
            TOO_LARGE,
            f"The request body is {length.decode('latin-1')[:20]} bytes; "
            f"the limit is {self.max_body_bytes:,}.",
            hint="Send a smaller body (questions are at most a few thousand characters).",
        )
        await error_response(error)(scope, receive, send)

    def _finish(self, scope: Scope, status: dict[str, Any], started: float) -> None:
        app = scope.get("app")
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "GET")
        elapsed = (status["at"] or time.perf_counter()) - started
        state = getattr(getattr(app, "state", None), "sqlsage", None)
        if state is not None:
            state.metrics.requests.labels(method, path, str(status["code"])).inc()
            state.metrics.latency.labels(method, path).observe(elapsed)
        access_log.info(
            "request",
            extra={
                "method": method,
                "route": path,
                "status": status["code"],
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )


def _validation_error(exc: RequestValidationError) -> SqlsageError:
    first = exc.errors()[0] if exc.errors() else {}
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    value = first.get("input")
    shown = repr(value)[:80] if value is not None and first.get("type") != "missing" else ""
    msg = str(first.get("msg", "is not valid"))
    if first.get("type") == "json_invalid":
        return SqlsageError(
            INVALID_ARGUMENT,
            f"The body is not valid JSON ({first.get('ctx', {}).get('error', msg)}).",
            hint='Send a JSON object such as {"message": "How many orders are there?"}.',
        )
    if first.get("type") == "missing":
        return SqlsageError(
            INVALID_ARGUMENT,
            f"Field '{loc}' is required.",
            hint="See the request schema at /docs.",
        )
    return SqlsageError(
        INVALID_ARGUMENT,
        f"Field '{loc}' {'has value ' + shown + ': ' if shown else ''}{msg}.",
        hint="See the request schema at /docs.",
    )


def create_app(
    settings: Settings | None = None, *, model_factory: Callable[[str], Any] | None = None
) -> FastAPI:
    """The HTTP app over one process's shared resources (opened in the lifespan)."""
    settings = settings or load_settings()

    mcp = MountedMcp()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thresholds = gc.get_threshold()
        try:
            async with (
                open_app_state(settings, model_factory=model_factory) as state,
                mcp.opened(state.resources, state.runner, state.keys),
            ):
                app.state.sqlsage = state
                # What start-up loaded (modules, graph, models, engines: ~250k objects) lives
                # as long as the process. Frozen out of the collector's sight, a full
                # collection walks only what requests and turns made since: it stalled the
                # event loop ~300 ms in the middle of a burst of chats, now a few ms. (The
                # index warm-up freezes what it builds in its turn.)
                gc.collect()
                gc.freeze()
                # A turn makes thousands of short-lived objects and lives for seconds: with
                # the default thresholds (700, 10, 10) its objects were promoted while 200
                # turns ran, and 2,000 chats paid ~8 s of collections, 36 full ones of ~100 ms
                # each in the event loop (benchmarks/server_load.py --turns 2000,
                # _server_proc.py --gc-stats). Collecting young objects every 20,000
                # allocations lets most of them die first: ~0.8 s in all, one full
                # collection; the same RSS.
                gc.set_threshold(*SERVER_GC_THRESHOLDS)
                yield
        finally:
            # Thawed once the app state has closed, its warm-up included (a warm-up still
            # running at shutdown freezes what it built; tests run many apps in one process).
            gc.set_threshold(*thresholds)
            gc.unfreeze()

    app = FastAPI(
        title="sqlsage",
        summary="Ask a database a question in plain language: SQL, rows, a chart and an answer.",
        version="0.1.0",
        lifespan=lifespan,
        responses={
            400: {"model": ErrorResponse},
            401: {"model": ErrorResponse},
            404: {"model": ErrorResponse},
            422: {"model": ErrorResponse},
            429: {"model": ErrorResponse},
        },
    )

    def count(request: Request, code: str) -> None:
        state = getattr(request.app.state, "sqlsage", None)
        if state is not None:
            state.metrics.errors.labels(code).inc()

    @app.exception_handler(SqlsageError)
    async def _sqlsage_error(request: Request, exc: SqlsageError) -> JSONResponse:
        count(request, exc.code)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        count(request, INVALID_ARGUMENT)
        return error_response(_validation_error(exc), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = NOT_FOUND if exc.status_code == 404 else INVALID_ARGUMENT
        hint = "See /docs for the API." if exc.status_code in (404, 405) else None
        return error_response(SqlsageError(code, str(exc.detail), hint=hint), exc.status_code)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(
            SqlsageError(INTERNAL_ERROR, f"{type(exc).__name__}", hint="Try again; report it.")
        )

    for router in (api_chat.router, api_sessions.router, api_data.router, api_ops.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=api_ops.STATIC), name="static")
    # MCP (streamable HTTP) for assistants, behind the same API keys as the API.
    app.router.routes.append(Route(MCP_PATH, endpoint=mcp, methods=None))
    origins = settings.cors_origin_list()
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    return app


def create_app_from_env() -> FastAPI:
    """uvicorn's factory for worker processes: settings from SQLSAGE_* and sqlsage.toml."""
    from server.logs import configure_logging

    configure_logging()
    return create_app(load_settings())
