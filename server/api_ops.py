"""Liveness, readiness, Prometheus metrics, the audit log, and a minimal home page."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from graphs.turns import MAX_QUESTION_CHARS
from memory.session_db import TITLE_MAX
from server.api_deps import Caller, State
from server.app_state import AppState
from tools.errors import FORBIDDEN, SqlsageError

router = APIRouter(tags=["operations"])
READY_TIMEOUT_S = 5.0
STATIC = Path(__file__).with_name("static")


@router.get("/", include_in_schema=False)
async def home() -> FileResponse:
    """The chat UI."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/api/info")
async def info(state: State) -> dict[str, Any]:
    """What a client needs before it asks anything (no key needed): whether keys are
    required, the question and session-title length limits, and the version."""
    return {
        "name": "sqlsage",
        "version": "0.1.0",
        "auth_required": state.keys.enabled,
        "max_question_chars": MAX_QUESTION_CHARS,
        "max_title_chars": TITLE_MAX,
    }


@router.get("/api/models")
async def models(state: State, principal: Caller) -> dict[str, Any]:
    """The model names this server accepts in a chat request, and the default."""
    return {"models": state.settings.allowed_models(), "default": state.settings.model}


@router.get("/api/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/api/ready")
async def ready(state: State, request: Request) -> JSONResponse:
    """Readiness: every database, the knowledge index and the session database/checkpointer
    answer. 503 names what does not; the reasons (hosts, ports) only to a valid API key, so a
    load balancer can probe without one."""
    checks: dict[str, Any] = {}
    for name in state.resources.databases.names():
        checks[f"database:{name}"] = await _check(_ping_database, state, name)
    checks["sessions"] = await _check(_ping_sessions, state)
    checks["checkpointer"] = await _check(_ping_checkpointer, state)
    checks["index"] = await _check(_ping_index, state)
    if state.redis is not None:
        checks["redis"] = await _check(_ping_redis, state)
    ok = all(c["ok"] for c in checks.values())
    if not _authenticated(state, request):
        checks = {name: {"ok": c["ok"]} for name, c in checks.items()}
    return JSONResponse(
        {"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503
    )


def _authenticated(state: AppState, request: Request) -> bool:
    try:
        state.keys.authenticate(
            request.headers.get("authorization"), request.headers.get("x-api-key")
        )
    except SqlsageError:
        return False
    return True


async def _check(probe: Any, *args: Any) -> dict[str, Any]:
    try:
        await asyncio.wait_for(probe(*args), READY_TIMEOUT_S)
    except SqlsageError as exc:
        return {"ok": False, "error": exc.to_dict()}
    except Exception as exc:
        return {"ok": False, "error": {"code": "unavailable", "message": type(exc).__name__}}
    return {"ok": True}


async def _ping_database(state: AppState, name: str) -> None:
    from tools.run_sql import execute_read_only

    database = state.resources.databases.get(name)
    await asyncio.to_thread(execute_read_only, database, "SELECT 1", max_rows=1, timeout_s=3)


async def _ping_sessions(state: AppState) -> None:
    await state.sessions.backend.run(state.sessions.list, limit=1)


async def _ping_checkpointer(state: AppState) -> None:
    checkpointer = getattr(state.runner.graph, "checkpointer", None)
    if checkpointer is not None:
        await checkpointer.aget_tuple({"configurable": {"thread_id": "sqlsage-ready-probe"}})


async def _ping_index(state: AppState) -> None:
    await asyncio.to_thread(lambda: state.resources.index.client.heartbeat())


async def _ping_redis(state: AppState) -> None:
    await state.redis.ping()


@router.get("/metrics", include_in_schema=False)
async def metrics(state: State) -> Response:
    """Prometheus text format."""
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/api/audit")
async def audit(
    state: State,
    principal: Caller,
    user: str | None = Query(default=None, max_length=200),
    db: str | None = Query(default=None, max_length=200),
    session_id: str | None = Query(default=None, max_length=64),
    since: Annotated[datetime | None, Query()] = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=10_000_000),
) -> dict[str, Any]:
    """Every executed statement (time, user, session, turn, database, SQL, rows, elapsed,
    outcome), newest first. Admin keys only (SQLSAGE_ADMIN_USERS)."""
    if not principal.admin:
        raise SqlsageError(
            FORBIDDEN,
            f"User '{principal.user}' may not read the audit log.",
            hint="Use a key of a user listed in SQLSAGE_ADMIN_USERS.",
        )
    entries = await state.sessions.backend.run(
        state.audit.query,
        user_id=user,
        db=db,
        session_id=session_id,
        since=since,
        limit=limit,
        offset=offset,
    )
    return {"entries": entries}
