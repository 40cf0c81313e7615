"""The SSE response on its own ASGI contract: frames and their bytes, pings while idle, a client
that goes away mid-wait, the server starting to exit, HEAD, and a foreign cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from server import sse
from server.metrics import Metrics
from server.sse import EventStream, OpenStreams


def flat(seq: int, kind: str = "step") -> dict[str, Any]:
    """A flat turn event."""
    return {"event": kind, "session_id": "s1", "turn": 2, "seq": seq, "name": "x\ny"}


class Client:
    """ASGI receive/send for one request: records what was sent; disconnects on demand."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()
        self._asked = 0

    async def receive(self) -> dict[str, Any]:
        self._asked += 1
        if self._asked == 1:  # the (empty) request body comes first, then only a disconnect
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def scope(method: str = "POST") -> dict[str, Any]:
    return {"type": "http", "method": method}


async def events(*items: dict[str, Any], wait: asyncio.Event | None = None) -> AsyncIterator[dict]:
    for item in items:
        yield item
    if wait is not None:
        await wait.wait()


def active(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("sqlsage_active_streams")


def test_frames_retry_on_the_first_and_a_clean_end() -> None:
    client, metrics = Client(), Metrics()
    stream = EventStream(
        events(flat(1, "session"), flat(2), flat(3, "done")), metrics, OpenStreams(lambda: False)
    )
    asyncio.run(stream(scope(), client.receive, client.send))
    start = client.sent[0]
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    assert (b"cache-control", b"no-store") in start["headers"]
    frames = client.body.split(b"\r\n\r\n")
    assert frames[0] == (
        b'id: s1:2:1\r\nevent: session\r\ndata: {"event":"session","session_id":"s1",'
        b'"turn":2,"seq":1,"name":"x\\ny"}\r\nretry: 2000'
    )
    assert (
        frames[1].startswith(b"id: s1:2:2\r\nevent: step\r\ndata: {") and b"retry" not in frames[1]
    )
    assert frames[2].startswith(b"id: s1:2:3\r\nevent: done\r\n") and frames[3] == b""
    assert client.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert active(metrics) == 0


def test_idle_streams_are_pinged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "PING_S", 0.05)

    async def slow() -> AsyncIterator[dict[str, Any]]:
        yield flat(1, "session")
        await asyncio.sleep(0.3)
        yield flat(2, "done")

    client = Client()
    asyncio.run(
        EventStream(slow(), Metrics(), OpenStreams(lambda: False))(
            scope(), client.receive, client.send
        )
    )
    body = client.body
    assert body.count(b": ping\r\n\r\n") >= 2
    assert body.index(b": ping") > body.index(b"event: session")
    assert body.index(b": ping") < body.index(b"event: done")


def test_a_client_that_goes_ends_the_stream_not_the_events_source() -> None:
    client, metrics = Client(), Metrics()
    closed: list[bool] = []

    async def waiting() -> AsyncIterator[dict[str, Any]]:
        try:
            yield flat(1, "session")
            await asyncio.Event().wait()  # the turn is still thinking
            yield flat(2)
        finally:
            closed.append(True)

    async def scenario() -> int:
        task = asyncio.ensure_future(
            EventStream(waiting(), metrics, OpenStreams(lambda: False))(
                scope(), client.receive, client.send
            )
        )
        await asyncio.sleep(0.05)
        assert active(metrics) == 1
        client.gone.set()
        await asyncio.wait_for(task, 5)
        return task.cancelling()

    assert asyncio.run(scenario()) == 0  # ended quietly, not as a cancelled request
    assert closed == [True]
    assert active(metrics) == 0
    assert client.sent[-1]["more_body"] is True  # no closing message to a gone client


def test_head_sends_headers_only() -> None:
    client = Client()
    never = asyncio.Event()
    asyncio.run(
        EventStream(events(flat(1), wait=never), Metrics(), OpenStreams(lambda: False))(
            scope("HEAD"), client.receive, client.send
        )
    )
    assert client.sent[0]["status"] == 200
    assert client.sent[1:] == [{"type": "http.response.body", "body": b"", "more_body": False}]


def test_a_foreign_cancellation_is_not_swallowed() -> None:
    client, metrics = Client(), Metrics()

    async def scenario() -> None:
        never = asyncio.Event()
        task = asyncio.ensure_future(
            EventStream(events(flat(1), wait=never), metrics, OpenStreams(lambda: False))(
                scope(), client.receive, client.send
            )
        )
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert active(metrics) == 0


def test_streams_end_cleanly_when_the_server_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "EXIT_POLL_S", 0.02)
    client, metrics = Client(), Metrics()
    exiting = [False]
    streams = OpenStreams(lambda: exiting[0])

    async def scenario() -> None:
        never = asyncio.Event()
        tasks = [
            asyncio.ensure_future(
                EventStream(events(flat(1), wait=never), metrics, streams)(
                    scope(), client.receive, client.send
                )
            )
            for _ in range(3)
        ]
        await asyncio.sleep(0.05)
        assert active(metrics) == 3
        exiting[0] = True
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert all(t.cancelling() == 0 for t in tasks)

    asyncio.run(scenario())
    assert active(metrics) == 0
    ends = [m for m in client.sent if m.get("more_body") is False]
    assert len(ends) == 3  # each stream closed with a clean end, no done: clients reconnect
