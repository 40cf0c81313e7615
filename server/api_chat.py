"""POST /api/chat (a turn as an SSE stream) and GET /api/chat/events (reconnect by Last-Event-ID)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query

from server.api_deps import Caller, State
from server.api_models import ChatRequest
from server.sse import EventStream, event_stream
from tools.errors import INVALID_ARGUMENT, SqlsageError

router = APIRouter(prefix="/api", tags=["chat"])
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "The turn's events."}
}


@router.post("/chat", response_class=EventStream, status_code=200, responses=SSE_RESPONSE)
async def chat(
    body: ChatRequest,
    state: State,
    principal: Caller,
    last_event_id: str | None = Header(default=None, max_length=200),
) -> EventStream:
    """Ask a question. The answer streams as SSE events: session, step, reasoning, token, sql,
    table, chart, error, done. With a Last-Event-ID header naming an unfinished turn, the rest
    of that turn is sent instead of starting a new one."""
    if last_event_id and await state.chat.remaining(principal, last_event_id):
        return event_stream(
            await state.chat.replay(principal, last_event_id), state.metrics, state.chat.streams
        )
    live = await state.chat.start(principal, body)
    return event_stream(live.follow(0), state.metrics, state.chat.streams)


@router.get("/chat/events", response_class=EventStream, status_code=200, responses=SSE_RESPONSE)
async def chat_events(
    state: State,
    principal: Caller,
    last_event_id: str | None = Header(default=None, max_length=200),
    after: str | None = Query(default=None, max_length=200, description="Same as Last-Event-ID."),
) -> EventStream:
    """Reconnect to a turn: the events after the one named by Last-Event-ID (or ?after=),
    whether the turn still runs (here or on another replica) or just finished."""
    event_id = last_event_id or after
    if not event_id:
        raise SqlsageError(
            INVALID_ARGUMENT,
            "No Last-Event-ID header or ?after= was sent.",
            hint="Pass the id of the last event you received: '<session>:<turn>:<seq>'.",
        )
    return event_stream(
        await state.chat.replay(principal, event_id), state.metrics, state.chat.streams
    )
