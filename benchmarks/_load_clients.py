"""The load generator's two HTTP clients for benchmarks/server_load.py: raw HTTP/1.1 on asyncio
sockets (connections opened before the clock starts: the least client work there is) and
httpx.AsyncClient (a typical Python client), plus the per-chat record they fill in."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx

QUESTION = "How many customers are there in each segment?"
CHAT_TIMEOUT_S = 120.0
KEEPALIVE_EXPIRY_S = 2.0


@dataclass
class Chat:
    """One chat's outcome (seconds from the request being sent)."""

    status: int = 0
    first_s: float | None = None
    done_s: float | None = None
    events: int = 0
    error: str | None = None  # why it counts as an error; None when it does not


def parse_frames(chunk: bytes, out: Chat, started: float) -> bool:
    """Count the complete SSE frames of `chunk` into `out`; True once `done` came."""
    now = time.perf_counter()
    seen_done = False
    for frame in chunk.split(b"\r\n\r\n"):
        if b"data:" not in frame:  # pings are comments and carry no data
            continue
        out.events += 1
        if out.first_s is None:
            out.first_s = now - started
        if b"event: error" in frame and out.error is None:
            out.error = "error event"
        if b"event: done" in frame:
            seen_done, out.done_s = True, now - started
    return seen_done


class HttpxClient:
    """httpx.AsyncClient with a pool as large as the concurrency: a typical Python client."""

    name = "httpx"

    def __init__(self, url: str, concurrency: int) -> None:
        # Idle connections expire before uvicorn's 5 s keep-alive timeout: a busy server closes
        # an idle connection on its timer just as a new request arrives on it (a ReadError).
        limits = httpx.Limits(
            max_connections=concurrency + 10,
            max_keepalive_connections=concurrency + 10,
            keepalive_expiry=KEEPALIVE_EXPIRY_S,
        )
        timeout = httpx.Timeout(CHAT_TIMEOUT_S, connect=30.0)
        self.client = httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout)

    async def connect(self, n: int) -> list[Any]:
        """The pool opens (or reuses) connections as requests go out, inside the clock."""
        return [None] * n

    async def release(self, conns: list[Any]) -> None:
        """Nothing to do: the pool keeps them."""

    async def chat(self, conn: Any, message: str) -> Chat:
        """One POST /api/chat in a new session, read to the end of its stream."""
        out = Chat()
        started = time.perf_counter()
        seen_done = False
        try:
            async with self.client.stream(
                "POST", "/api/chat", json={"message": message}
            ) as response:
                out.status = response.status_code
                if response.status_code != 200:
                    body = (await response.aread()).decode(errors="replace")
                    out.error = f"HTTP {response.status_code}: {body[:200]}"
                    return out
                frame: list[str] = []
                async for line in response.aiter_lines():
                    if line:
                        frame.append(line)
                        continue
                    text = "\r\n".join(frame).encode()
                    seen_done = parse_frames(text, out, started) or seen_done
                    frame = []
        except httpx.HTTPError as exc:
            out.error = f"{type(exc).__name__}: {exc}"[:200]
            return out
        if not seen_done and out.error is None:
            out.error = "stream ended without done"
        return out

    async def health(self, conn: Any) -> float:
        """One GET /api/health; seconds."""
        started = time.perf_counter()
        (await self.client.get("/api/health")).raise_for_status()
        return time.perf_counter() - started

    async def ready(self) -> int:
        """GET /api/ready's status."""
        return (await self.client.get("/api/ready")).status_code

    async def close(self) -> None:
        """Close the pool."""
        await self.client.aclose()


class RawConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: sends a request, reads its (chunked) answer. The
    least client work there is: no header objects, no line iterator, one callback per read."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = True
        self.status = 0
        self._buf = b""
        self._body = b""
        self._head: tuple[bool, int] | None = None  # chunked, content length
        self._on_body: Callable[[bytes], object] = lambda data: None
        self._answer: asyncio.Future[int] | None = None

    async def open(self, host: str, port: int) -> RawConnection:
        """Connect (again: the same object serves a new socket)."""
        await asyncio.get_running_loop().create_connection(lambda: self, host, port)
        return self

    def close(self) -> None:
        """Close the socket."""
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        self.transport, self.lost = cast(asyncio.Transport, transport), False

    def connection_lost(self, exc: Exception | None) -> None:
        """A request in flight fails."""
        self.lost = True
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionError(f"connection lost ({exc})"))

    def request(self, raw: bytes, on_body: Callable[[bytes], object]) -> asyncio.Future[int]:
        """Send `raw`; `on_body` sees the decoded body, complete SSE frames at a time (status
        in .status by then). Resolves to the status once the answer is complete."""
        assert self.transport is not None
        self._buf, self._body, self._head, self._on_body = b"", b"", None, on_body
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self._answer

    def data_received(self, data: bytes) -> None:
        """Parse the head, then the chunks (or a Content-Length body)."""
        self._buf += data
        if self._head is None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self._buf[:end].lower().split(b"\r\n")
            self._buf = self._buf[end + 4 :]
            self.status = int(lines[0].split()[1])
            length = next((int(h[15:]) for h in lines if h.startswith(b"content-length:")), 0)
            self._head = (b"transfer-encoding: chunked" in lines, length)
        chunked, length = self._head
        if not chunked:
            if len(self._buf) >= length:
                self._on_body(self._buf[:length])
                self._resolve()
            return
        while (line_end := self._buf.find(b"\r\n")) >= 0:
            size = int(self._buf[:line_end], 16)
            if len(self._buf) < line_end + 2 + size + 2:
                return
            piece = self._buf[line_end + 2 : line_end + 2 + size]
            self._buf = self._buf[line_end + 2 + size + 2 :]
            if size == 0:
                self._resolve()
                return
            # SSE frames may straddle chunks: hand over complete frames only.
            self._body += piece
            cut = self._body.rfind(b"\r\n\r\n")
            if cut >= 0:
                self._on_body(self._body[: cut + 4])
                self._body = self._body[cut + 4 :]

    def _resolve(self) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(self.status)


class RawClient:
    """HTTP/1.1 over asyncio sockets, connections opened before the clock starts."""

    name = "raw"

    def __init__(self, url: str, concurrency: int) -> None:
        self.host, port = url.rsplit("//", 1)[1].split(":")
        self.port = int(port)
        body = json.dumps({"message": QUESTION}).encode()
        self._chat = (
            f"POST /api/chat HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self._health = f"GET /api/health HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode()
        self._ready = self._health.replace(b"/api/health", b"/api/ready")

    async def connect(self, n: int) -> list[RawConnection]:
        """`n` fresh connections (uvicorn closes idle ones after 5 s, so none are kept)."""
        return list(
            await asyncio.gather(*(RawConnection().open(self.host, self.port) for _ in range(n)))
        )

    async def release(self, conns: list[RawConnection]) -> None:
        """Close them."""
        for conn in conns:
            conn.close()

    async def chat(self, conn: RawConnection, message: str) -> Chat:
        """One POST /api/chat in a new session on `conn` (reopened inside the clock if the
        server had closed it), read to the end of its stream."""
        out = Chat()
        started = time.perf_counter()
        seen_done = False
        body: list[bytes] = []

        def on_body(data: bytes) -> None:
            nonlocal seen_done
            if conn.status != 200:
                body.append(data)
            elif parse_frames(data, out, started):
                seen_done = True

        try:
            if conn.lost:
                await conn.open(self.host, self.port)
            out.status = await asyncio.wait_for(conn.request(self._chat, on_body), CHAT_TIMEOUT_S)
        except (OSError, ConnectionError, TimeoutError) as exc:
            out.error = f"{type(exc).__name__}: {exc}"[:200]
            conn.close()
            return out
        if out.status != 200:
            out.error = f"HTTP {out.status}: {b''.join(body)[:200].decode(errors='replace')}"
        elif not seen_done and out.error is None:
            out.error = "stream ended without done"
        return out

    async def health(self, conn: RawConnection) -> float:
        """One GET /api/health on `conn`; seconds."""
        started = time.perf_counter()
        status = await conn.request(self._health, lambda data: None)
        if status != 200:
            raise RuntimeError(f"/api/health answered {status}")
        return time.perf_counter() - started

    async def ready(self) -> int:
        """GET /api/ready's status (on a connection of its own)."""
        conn = await RawConnection().open(self.host, self.port)
        try:
            return await conn.request(self._ready, lambda data: None)
        finally:
            conn.close()

    async def close(self) -> None:
        """Nothing stays open between waves."""


Client = HttpxClient | RawClient
