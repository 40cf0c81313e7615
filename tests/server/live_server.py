"""A real uvicorn serving the sqlsage app on a loopback socket, in a thread of the test process
(httpx's ASGI transport buffers SSE, so streaming is tested over a socket), and SSE helpers."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from server.http import create_app
from server.settings import Settings


@dataclass
class LiveServer:
    """A running server: its base URL and the app (for its state)."""

    url: str
    app: Any

    @property
    def state(self) -> Any:
        """The app's AppState."""
        return self.app.state.sqlsage


@contextmanager
def live_server(
    settings: Settings, *, model_factory: Callable[[str], Any] | None = None
) -> Iterator[LiveServer]:
    """Start the app under uvicorn on a free loopback port; stop it on exit."""
    app = create_app(settings, model_factory=model_factory)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, lifespan="on", timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


@dataclass
class SseEvent:
    """One parsed SSE frame."""

    event: str
    id: str | None
    data: dict[str, Any]


def iter_sse(response: httpx.Response) -> Iterator[SseEvent]:
    """Parse frames from a streaming response as they arrive (comments/pings skipped)."""
    event: str = "message"
    event_id: str | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield SseEvent(event, event_id, json.loads("\n".join(data)))
            event, event_id, data = "message", None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)


def chat(
    client: httpx.Client, body: dict[str, Any], headers: dict[str, str] | None = None
) -> list[SseEvent]:
    """POST /api/chat and read the whole stream (raises for a non-200 answer)."""
    with client.stream("POST", "/api/chat", json=body, headers=headers or {}) as response:
        if response.status_code != 200:
            response.read()
            raise AssertionError(f"{response.status_code}: {response.text}")
        return list(iter_sse(response))
