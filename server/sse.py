"""SSE framing and the streaming response: each turn event becomes one frame with
`event: <type>`, `id: <session>:<turn>:<seq>` and the flat event as JSON data (the same object
`ask --json` steps and MCP progress use).

The response is a plain ASGI callable on the request's own task: it sends the frames, and one
helper task waits for the client to go (and pings idle streams so proxies keep them open). No
task group, no cancel scope per frame: a burst of new chats pays for its streams little more
than for any other request. When the server starts shutting down, every open stream ends
cleanly (turns run on and are checkpointed; clients reconnect with Last-Event-ID, to another
replica or to this one when it is back), so uvicorn does not wait for turns to finish.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from server.metrics import Metrics

PING_S = 15.0  # keeps proxies from closing an idle stream while the model thinks
RETRY_MS = 2000  # what a browser's EventSource waits before reconnecting
PING = b": ping\r\n\r\n"
EXIT_POLL_S = 0.5  # how soon open streams notice that the server is shutting down
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: pass frames on as they come
]


def frame(event: dict[str, Any], *, retry_ms: int | None = None) -> bytes:
    """One SSE frame for a flat event (JSON has no raw newlines, so one data line)."""
    data = json.dumps(event, separators=(",", ":"), default=str)
    retry = f"retry: {retry_ms}\r\n" if retry_ms is not None else ""
    event_id = f"{event['session_id']}:{event['turn']}:{event['seq']}"
    return f"id: {event_id}\r\nevent: {event['event']}\r\ndata: {data}\r\n{retry}\r\n".encode()


def uvicorn_exiting() -> bool:
    """True once uvicorn has been told to exit (its SIGTERM/SIGINT handler is a bound method of
    its Server, whose should_exit it sets). Never true outside uvicorn's main thread."""
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(server, "should_exit", False))


class OpenStreams:
    """The event streams this process serves; they all end when the server begins to exit.
    One polling task for all of them, started with the first."""

    def __init__(self, exiting: Callable[[], bool] = uvicorn_exiting) -> None:
        self.exiting = exiting
        self._streams: set[EventStream] = set()
        self._watcher: asyncio.Task[None] | None = None

    def add(self, stream: EventStream) -> None:
        """Serve `stream` until it ends or the server exits."""
        self._streams.add(stream)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def discard(self, stream: EventStream) -> None:
        """`stream` has ended."""
        self._streams.discard(stream)

    async def _watch(self) -> None:
        while self._streams:
            await asyncio.sleep(EXIT_POLL_S)
            if self.exiting():
                for stream in list(self._streams):
                    stream.stop("exit")
                return


class EventStream(Response):
    """A text/event-stream response over a turn's events. It ends when the events end, or
    as soon as the client disconnects (the turn itself runs on in its own task)."""

    media_type = "text/event-stream"

    def __init__(
        self, events: AsyncIterator[dict[str, Any]], metrics: Metrics, streams: OpenStreams
    ) -> None:
        self.events = events
        self.metrics = metrics
        self.streams = streams
        self.status_code = 200
        self.background = None
        self.raw_headers = list(HEADERS)
        self._stopped: str | None = None  # "gone" (the client) or "exit" (the server)
        self._task: asyncio.Task[Any] | None = None

    def stop(self, why: str) -> None:
        """End the stream early: the client went ("gone") or the server exits ("exit")."""
        if self._stopped is None and self._task is not None:
            self._stopped = why
            self._task.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream the frames; stop early when the client goes."""
        start = {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
        if scope.get("method") == "HEAD":  # headers only: a HEAD must not open a stream
            await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        task = self._task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.create_task(self._watch(receive, send))
        self.streams.add(self)
        self.metrics.active_streams.inc()
        try:
            await send(start)
            retry: int | None = RETRY_MS
            async for event in self.events:
                body = frame(event, retry_ms=retry)
                retry = None
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except asyncio.CancelledError:
            # stop() cancelled us: end quietly. Any other cancellation goes on up.
            if self._stopped is None or task.uncancel() > 0:
                raise
        finally:
            watcher.cancel()  # before the closing send: no ping may follow it
            self.streams.discard(self)
            self.metrics.active_streams.dec()
        if self._stopped != "gone":  # a clean end of stream, also when the server exits
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        aclose = getattr(self.events, "aclose", None)
        if aclose is not None:  # a stream left early: its generator's cleanup runs now
            await aclose()
        if self.background is not None:
            await self.background()

    async def _watch(self, receive: Receive, send: Send) -> None:
        """Wait for the client to disconnect (then stop the stream); ping every PING_S."""
        while True:
            try:
                async with asyncio.timeout(PING_S):
                    message = await receive()
            except TimeoutError:
                await send({"type": "http.response.body", "body": PING, "more_body": True})
                continue
            if message["type"] == "http.disconnect":
                self.stop("gone")
                return


def event_stream(
    events: AsyncIterator[dict[str, Any]], metrics: Metrics, streams: OpenStreams
) -> EventStream:
    """A text/event-stream response over a turn's events."""
    return EventStream(events, metrics, streams)
