"""A scripted fake OpenAI-compatible chat server on a real socket, for model-gateway tests.

    with fake_openai_server() as server:
        server.script(Fail(429), Reply("hello"))          # any model: a 429, then a reply
        server.script(Fail(500), model="gpt-4o", forever=True)  # this model always fails
        model = make_chat_model("openai/gpt-4o-mini", api_base=server.url)
        ...
        assert server.requests[0]["messages"] == [...]

Behaviours are popped per request from the queue of the request's `model` field (the name
litellm sends, without the provider prefix), else from the default queue. With `forever=True`
the last behaviour of that queue is never popped. An empty queue answers 400 "script exhausted",
which the client does not retry, so a short script fails the test loudly instead of hanging.

Other test folders import it as `from tests.agents.fake_openai import ...`.
(tests/conftest.py) and this folder is a package, so `agents` here is tests/agents, while
`agents.llm` and friends still resolve to the source package through the editable install.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One tool call in a reply; `args` as a str is sent verbatim (to script malformed JSON)."""

    name: str
    args: dict[str, Any] | str
    id: str = ""


@dataclass(frozen=True)
class Reply:
    """A successful completion: text and/or tool calls, optional reasoning, and token usage."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    prompt_tokens: int = 11
    completion_tokens: int = 7
    break_after: int | None = None  # streaming only: after this many chunks, send a broken one


@dataclass(frozen=True)
class Fail:
    """An HTTP error status with an OpenAI-style error body (429 carries Retry-After)."""

    status: int
    retry_after: float = 0.01
    message: str = ""


@dataclass(frozen=True)
class Hang:
    """Sleep before answering (longer than the client timeout), then reply."""

    seconds: float
    then: Reply = field(default_factory=lambda: Reply("too late"))


@dataclass(frozen=True)
class Garbage:
    """HTTP 200 with a body that is not a chat completion (not JSON, or JSON without choices)."""

    body: str = "<html><body>502 Bad Gateway</body></html>"


Behaviour = Reply | Fail | Hang | Garbage


class FakeOpenAI:
    """The running server: `.url` is the api_base (ends in /v1), `.requests` the bodies received."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._queues: dict[str | None, deque[Behaviour]] = {}
        self._forever: set[str | None] = set()
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.url = ""

    def script(
        self, *behaviours: Behaviour, model: str | None = None, forever: bool = False
    ) -> None:
        """Queue behaviours for requests naming `model` (None: any model without its own queue)."""
        with self._lock:
            self._queues.setdefault(model, deque()).extend(behaviours)
            if forever:
                self._forever.add(model)

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        """The request bodies whose `model` field is `model`."""
        return [r for r in self.requests if r.get("model") == model]

    def next_behaviour(self, body: dict[str, Any]) -> Behaviour | None:
        """Record the request and pop the behaviour that answers it."""
        with self._lock:
            self.requests.append(body)
            key = body.get("model")
            queue_key = key if self._queues.get(key) else None
            queue = self._queues.get(queue_key)
            if not queue:
                return None
            if queue_key in self._forever and len(queue) == 1:
                return queue[0]
            return queue.popleft()


def _completion(reply: Reply, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.reasoning is not None:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id or f"call_{i}",
                "type": "function",
                "function": {"name": call.name, "arguments": _args_text(call)},
            }
            for i, call in enumerate(reply.tool_calls)
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _finish_reason(reply)},
        ],
        "usage": _usage(reply),
    }


def _stream_chunks(reply: Reply, model: str, include_usage: bool) -> Iterator[dict[str, Any]]:
    """The chunks OpenAI would stream: role, reasoning, text pieces, tool-call fragments, usage."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""})
    if reply.reasoning:
        for piece in _pieces(reply.reasoning):
            yield chunk({"reasoning_content": piece})
    for piece in _pieces(reply.text):
        yield chunk({"content": piece})
    for i, call in enumerate(reply.tool_calls):
        head = {"index": i, "id": call.id or f"call_{i}", "type": "function"}
        yield chunk({"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]})
        # Arguments arrive as several fragments, as OpenAI streams them.
        for piece in _pieces(_args_text(call), size=7):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    yield chunk({}, finish=_finish_reason(reply))
    if include_usage:
        yield {**chunk({}), "choices": [], "usage": _usage(reply)}


def _pieces(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _args_text(call: ToolCall) -> str:
    return call.args if isinstance(call.args, str) else json.dumps(call.args)


def _finish_reason(reply: Reply) -> str:
    return "tool_calls" if reply.tool_calls else "stop"


def _usage(reply: Reply) -> dict[str, int]:
    total = reply.prompt_tokens + reply.completion_tokens
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": total,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep pytest output clean."""

    def do_POST(self) -> None:
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        behaviour = self.server.fake.next_behaviour(body)
        # The client may have given up (timeout) before the answer; nothing to do then.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer(behaviour, body)

    def _answer(self, behaviour: Behaviour | None, body: dict[str, Any]) -> None:
        model = str(body.get("model", "fake"))
        if behaviour is None:
            error = {"message": "fake server: script exhausted", "type": "invalid_request_error"}
            self._json(400, {"error": error})
        elif isinstance(behaviour, Fail):
            headers = {"Retry-After": str(behaviour.retry_after)} if behaviour.status == 429 else {}
            text = behaviour.message or f"fake failure {behaviour.status}"
            error = {"message": text, "type": "server_error"}
            self._json(behaviour.status, {"error": error}, headers)
        elif isinstance(behaviour, Garbage):
            self._raw(200, behaviour.body.encode(), "application/json")
        elif isinstance(behaviour, Hang):
            # An Event, not time.sleep, so stopping the server releases the handler thread.
            if not self.server.fake.stopping.wait(behaviour.seconds):
                self._reply(behaviour.then, body, model)
        else:
            self._reply(behaviour, body, model)

    def _reply(self, reply: Reply, body: dict[str, Any], model: str) -> None:
        if not body.get("stream"):
            self._json(200, _completion(reply, model))
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for n, chunk in enumerate(_stream_chunks(reply, model, include_usage)):
            if n == reply.break_after:
                self.wfile.write(b'data: {"choices": [{"delta": \n\n')
                return
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(payload).encode(), "application/json", headers)

    def _raw(
        self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler stuck in Hang must not hold up shutdown

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def fake_openai_server() -> Iterator[FakeOpenAI]:
    """Run a FakeOpenAI on 127.0.0.1 (a free port) for the duration of the block."""
    fake = FakeOpenAI()
    httpd = _Server(fake)
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    # A short poll interval: shutdown() waits for it, and tests start and stop many servers.
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-openai", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        fake.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
