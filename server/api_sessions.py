"""Sessions (list, read, rename, delete), turn traces and feedback: always the caller's own.
Another user's session answers 404, exactly like a missing one, so ids do not leak."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Path, Query, Response

from memory.checkpointer import delete_thread
from memory.sessions import SessionInfo
from server.api_deps import Caller, State
from server.api_models import (
    SESSION_ID_PATTERN,
    FeedbackOut,
    FeedbackRequest,
    RenameRequest,
    SessionDetail,
    SessionOut,
    TraceOut,
    TurnOut,
)
from server.app_state import AppState
from server.auth import Principal
from server.logs import get_logger
from tools.errors import NOT_FOUND, SqlsageError

router = APIRouter(prefix="/api", tags=["sessions"])
SessionPath = Path(pattern=SESSION_ID_PATTERN)
TurnPath = Path(ge=1, le=1_000_000)
log = get_logger("sessions")


def _session_out(info: SessionInfo) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "title": info.title,
        "db": info.db,
        "model": info.model,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "message_count": info.message_count,
        "turns": info.turns,
    }


async def own_session(state: AppState, principal: Principal, session_id: str) -> SessionInfo:
    """The caller's session, or 404."""
    return await state.sessions.backend.run(state.sessions.get, session_id, owner=principal.user)


async def own_turn(
    state: AppState, principal: Principal, session_id: str, turn: int
) -> dict[str, Any]:
    """The record of a finished turn of the caller's session, or 404."""
    await own_session(state, principal, session_id)
    record = await state.sessions.backend.run(state.turn_log.get, session_id, turn)
    if record is None:
        raise SqlsageError(
            NOT_FOUND,
            f"Turn {turn} of session '{session_id}' not found.",
            hint="Turns count from 1 and are listed once they have finished "
            "(GET /api/sessions/{id}).",
        )
    return record


@router.get("/sessions", response_model=list[SessionOut])
async def list_sessions(
    state: State,
    principal: Caller,
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> list[dict[str, Any]]:
    """The caller's sessions, most recently active first."""
    infos = await state.sessions.backend.run(
        state.sessions.list, owner=principal.user, limit=limit, offset=offset
    )
    return [_session_out(info) for info in infos]


@router.get("/sessions/{session_id}", response_model=SessionDetail)
async def get_session(
    state: State, principal: Caller, session_id: str = SessionPath
) -> dict[str, Any]:
    """A session with its messages: each question with its answer, SQL, table and chart."""
    info = await own_session(state, principal, session_id)
    records = await state.sessions.backend.run(state.turn_log.for_session, session_id)
    messages = [await _turn_out(state, principal, r) for r in records]
    return {**_session_out(info), "messages": messages}


async def _turn_out(state: AppState, principal: Principal, record: dict[str, Any]) -> TurnOut:
    table = record.get("table") or {}
    rows: list[list[Any]] = []
    if record.get("result_ref"):
        try:
            stored = await state.sessions.backend.run(
                state.sessions.results.get, record["result_ref"], owner=principal.user
            )
            rows = stored.rows
        except SqlsageError:
            rows = []
    return TurnOut(
        turn=record["turn"],
        question=record["question"],
        answer=record["answer"],
        status=record["status"],
        db=record["db"],
        model=record["model"],
        sql=record["sql"],
        columns=table.get("columns") or [],
        rows=rows,
        row_count=table.get("row_count") or 0,
        truncated=bool(table.get("truncated")),
        result_ref=record.get("result_ref"),
        chart=record.get("chart"),
        error=record.get("error"),
        usage=record.get("usage") or {},
        elapsed_ms=record.get("elapsed_ms") or 0.0,
        created_at=record["created_at"],
    )


@router.patch("/sessions/{session_id}", response_model=SessionOut)
async def rename_session(
    body: RenameRequest, state: State, principal: Caller, session_id: str = SessionPath
) -> dict[str, Any]:
    """Rename a session."""
    info = await state.sessions.backend.run(
        state.sessions.rename, session_id, body.title, owner=principal.user
    )
    return _session_out(info)


@router.delete("/sessions/{session_id}", status_code=204)
async def delete_session(
    state: State, principal: Caller, session_id: str = SessionPath
) -> Response:
    """Delete a session: its catalog entry, results, turn records and checkpoints."""
    await state.sessions.backend.run(state.sessions.delete, session_id, owner=principal.user)
    await state.sessions.backend.run(state.turn_log.delete_session, session_id)
    checkpointer = getattr(state.runner.graph, "checkpointer", None)
    if checkpointer is not None:
        await delete_thread(checkpointer, session_id)
    log.info("session deleted", extra={"deleted": session_id})
    return Response(status_code=204)


def _trace(record: dict[str, Any]) -> dict[str, Any]:
    steps = record.get("steps") or []
    return {
        "session_id": record["session_id"],
        "turn": record["turn"],
        "question": record["question"],
        "status": record["status"],
        "steps": steps,
        "usage": record.get("usage") or {},
        "elapsed_ms": record.get("elapsed_ms") or 0.0,
        "cache_hits": sum(1 for s in steps if "(cached)" in str(s.get("summary") or "")),
    }


@router.get("/traces/{session_id}", response_model=list[TraceOut])
async def traces(
    state: State, principal: Caller, session_id: str = SessionPath
) -> list[dict[str, Any]]:
    """The step-by-step traces of every finished turn of a session."""
    await own_session(state, principal, session_id)
    records = await state.sessions.backend.run(state.turn_log.for_session, session_id)
    return [_trace(r) for r in records]


@router.get("/traces/{session_id}/{turn}", response_model=TraceOut)
async def trace(
    state: State, principal: Caller, session_id: str = SessionPath, turn: int = TurnPath
) -> dict[str, Any]:
    """One turn's trace: each node and tool call with its args, summary and timing; usage."""
    return _trace(await own_turn(state, principal, session_id, turn))


@router.post("/feedback", response_model=FeedbackOut)
async def feedback(body: FeedbackRequest, state: State, principal: Caller) -> dict[str, Any]:
    """Rate an answer. Thumbs-up saves its question and SQL as a verified example in the
    knowledge index (validated first); thumbs-down is kept for review."""
    record = await own_turn(state, principal, body.session_id, body.turn)
    saved = False
    message = "Thanks: the rating is stored for review."
    if body.rating == "up":
        if not record.get("sql") or record.get("status") != "answered":
            message = "Thanks. This answer ran no SQL, so there is no example to save."
        else:
            await asyncio.to_thread(_save_example, state, record)
            saved = True
            message = "Thanks: the question and its SQL are now a verified example."
    new_id = await state.sessions.backend.run(
        state.feedback.add,
        session_id=body.session_id,
        turn=body.turn,
        owner=principal.user,
        rating=body.rating,
        comment=body.comment,
        example_saved=saved,
    )
    return {"id": new_id, "rating": body.rating, "example_saved": saved, "message": message}


def _save_example(state: AppState, record: dict[str, Any]) -> None:
    from memory.knowledge import add_example
    from server.resources import knowledge_file

    resources = state.resources
    database = resources.database(record.get("db"))
    path = knowledge_file(resources.settings, database.name, for_writing=True)
    add_example(path, record["question"], record["sql"], database)
    resources.index.build(database)
