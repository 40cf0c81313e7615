"""SSE framing: each turn event becomes one frame with `event: <type>`, `id: <session>:<turn>:<seq>`
and the flat event as JSON data (the same object `ask --json` steps and MCP progress use)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette.sse import EventSourceResponse, ServerSentEvent

from server.metrics import Metrics

PING_S = 15  # keeps proxies from closing an idle stream while the model thinks
RETRY_MS = 2000  # what a browser's EventSource waits before reconnecting


def frame(event: dict[str, Any]) -> ServerSentEvent:
    """One SSE frame for a flat event."""
    return ServerSentEvent(
        data=json.dumps(event, separators=(",", ":"), default=str),
        event=event["event"],
        id=f"{event['session_id']}:{event['turn']}:{event['seq']}",
    )


async def _frames(
    events: AsyncIterator[dict[str, Any]], metrics: Metrics
) -> AsyncIterator[ServerSentEvent]:
    metrics.active_streams.inc()
    try:
        first = True
        async for event in events:
            out = frame(event)
            if first:
                out.retry, first = RETRY_MS, False
            yield out
    finally:  # also on a client disconnect: the turn itself runs on in its own task
        metrics.active_streams.dec()


def event_stream(events: AsyncIterator[dict[str, Any]], metrics: Metrics) -> EventSourceResponse:
    """A text/event-stream response over a turn's events."""
    return EventSourceResponse(
        _frames(events, metrics),
        ping=PING_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
