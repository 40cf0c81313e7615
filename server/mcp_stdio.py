"""The stdio wire of `sqlsage mcp`: newline-delimited JSON-RPC on the process's stdin and stdout,
read and written on the event loop, with a fast start.

The SDK's `stdio_server()` reads every line, and writes and flushes every reply, through a
worker thread (`anyio.wrap_file`): three thread hops per call, ~0.2 ms each here. This module
gives the SDK's own `stdio_server` (through its public `stdin`/`stdout` parameters) a line
source and a line sink that live on the event loop. The SDK still parses, validates,
dispatches and serializes every message; only the bytes move differently.

Fast start: importing the SDK takes ~0.8 s, and Claude Desktop and Code ask `initialize` and
`tools/list` the moment they spawn the server. The answers the SDK gave to those two at an
earlier start are kept in a start snapshot (the user's cache directory, keyed by the identity
of the code that produced them and by what the client asked). While the SDK loads in a
worker thread, this wire answers `initialize`, `tools/list` and `ping` from the snapshot and
holds every other message. When the SDK is ready it is handed the client's `initialize` again
under a private id (so its session is in the state the client believes), then everything
held, in order. The SDK's own answers to the replayed requests never reach the client; they
are compared with what the snapshot said: a stale snapshot is replaced, and if its tool list
was wrong the client gets `notifications/tools/list_changed` and asks again. With no snapshot
(the first start after an install or upgrade), everything is answered by the SDK, and the
answers are recorded for the next start.

Nothing here imports the SDK: the module is loaded before it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import re
import stat
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("sqlsage.mcp")

LINE_LIMIT = 128 * 1024 * 1024  # one JSON-RPC message; the SDK's own reader has none
PRIVATE_ID = "sqlsage-start-"
OBSERVED_LINES = 8  # the handshake is at the start of the stream
SETTLE_POLL_S = 0.25  # at end of input: how often to look whether the client still reads
SNAPSHOT_FORMAT = 1
# Modules whose code decides what initialize and tools/list answer.
CODE_MODULES = ("mcp", "mcp_types", "pydantic", "pydantic_core")
CODE_DIRS = ("server", "tools")

Json = dict[str, Any]


# ---- the pipes --------------------------------------------------------------------------------
@dataclass
class StdioPipes:
    """Private duplicates of fd 0 and 1 (the wire). While they are held, fd 0 reads the null
    device and fd 1 writes to stderr, so a stray print or a child process cannot corrupt the
    protocol (as the SDK's own transport does)."""

    read_fd: int
    write_fd: int

    @classmethod
    def claim(cls) -> StdioPipes | None:
        """The wire, if stdin and stdout are pipes or sockets; None otherwise (a terminal or a
        file: the SDK's thread-based transport serves those)."""
        for fd in (0, 1):
            try:
                mode = os.fstat(fd).st_mode
            except OSError:
                return None
            if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
                return None
        sys.stdout.flush()
        read_fd = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
        write_fd = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)
        return cls(read_fd, write_fd)

    def restore(self) -> None:
        """Point fd 0 and 1 back at the wire."""
        with contextlib.suppress(OSError):
            os.dup2(self.read_fd, 0)
        with contextlib.suppress(OSError):
            os.dup2(self.write_fd, 1)


class LineReader:
    """Lines from the wire, read on the event loop (no thread)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    async def readline(self) -> str | None:
        """The next line (with its newline; the last one may lack it), or None at the end of
        input. A line over LINE_LIMIT is dropped with a warning on stderr (the SDK's reader
        has no limit; the client's request then times out)."""
        skipping = False
        while True:
            try:
                raw = await self.reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as end:
                raw = b"" if skipping else end.partial
            except asyncio.LimitOverrunError as over:
                await self.reader.readexactly(over.consumed)  # discarded
                skipping = True
                continue
            if skipping and raw:
                log.warning("an MCP message over %d MiB was dropped", LINE_LIMIT >> 20)
                skipping = False
                continue
            if not raw:
                return None
            return raw.decode("utf-8", errors="replace")


class LineWriter:
    """Writes lines to the wire on the event loop; `flush` waits only when the client is not
    reading (the pipe's buffer is full)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def write(self, text: str) -> None:
        self.writer.write(text.encode("utf-8"))

    async def drain(self) -> None:
        await self.writer.drain()

    @property
    def closing(self) -> bool:
        """True once the client has stopped reading (a write failed) or the wire closed."""
        return self.writer.transport.is_closing()

    def close(self) -> None:
        self.writer.close()


async def open_wire(pipes: StdioPipes) -> tuple[LineReader, LineWriter]:
    """Event-loop reader and writer over the claimed pipes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader),
        open(pipes.read_fd, "rb", buffering=0, closefd=False),  # noqa: SIM115 (the transport owns it)
    )
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin,
        open(pipes.write_fd, "wb", buffering=0, closefd=False),  # noqa: SIM115
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return LineReader(reader), LineWriter(writer)


# ---- the start snapshot -------------------------------------------------------------------------
def code_identity() -> str:
    """A fingerprint of the code that shapes initialize and tools/list: this interpreter, the
    SDK, pydantic and sqlsage's own server and tools modules (paths, sizes, mtimes; no reads)."""
    parts = [sys.version, sys.prefix, str(SNAPSHOT_FORMAT)]
    for name in CODE_MODULES:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec else None
        parts.append(f"{name}:{_stat_key(Path(origin)) if origin else '-'}")
    root = Path(__file__).resolve().parents[1]
    for folder in CODE_DIRS:
        for path in sorted((root / folder).glob("*.py")):
            parts.append(_stat_key(path))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _stat_key(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path}:{info.st_size}:{info.st_mtime_ns}"


def snapshot_path() -> Path:
    """$XDG_CACHE_HOME/sqlsage (~/.cache/sqlsage), one file per Python environment."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    env = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    return Path(base) / "sqlsage" / f"mcp-start-{env}.json"


def handshake_key(params: Any) -> str:
    """What an initialize answer may depend on: the protocol version and the client's
    capabilities (not its name)."""
    if not isinstance(params, dict):
        return ""
    wanted = {"protocolVersion": params.get("protocolVersion"), "caps": params.get("capabilities")}
    return json.dumps(wanted, sort_keys=True, separators=(",", ":"))


@dataclass
class StartSnapshot:
    """Recorded answers: handshake key -> {"initialize": result, "tools/list": result}."""

    path: Path
    identity: str
    entries: dict[str, Json] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, identity: str) -> StartSnapshot:
        """The snapshot at path if it was recorded by this very code; else an empty one."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls(path, identity)
        if not isinstance(data, dict) or data.get("identity") != identity:
            return cls(path, identity)
        entries = data.get("entries")
        return cls(path, identity, entries if isinstance(entries, dict) else {})

    def save(self) -> None:
        """Written atomically; a cache that cannot be written only costs the next fast start."""
        body = json.dumps({"identity": self.identity, "entries": self.entries})
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".mcp-start-")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(body)
            os.replace(tmp, self.path)
        except OSError as error:
            log.debug("MCP start snapshot not saved: %s", error)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


# ---- the handover ---------------------------------------------------------------------------------
def _line(message: Json) -> str:
    return json.dumps(message, separators=(",", ":")) + "\n"


@dataclass
class Watch:
    """A request whose answer the wire wants to see: `drop` ones were replayed under a private
    id and must not reach the client."""

    key: str
    method: str
    drop: bool
    served: Json | None = None  # what the snapshot answered, to compare


class StartState:
    """What happened before the SDK was ready, and the answers still awaited."""

    def __init__(self, snapshot: StartSnapshot) -> None:
        self.snapshot = snapshot
        self.held: collections.deque[str] = collections.deque()
        self.watches: dict[str, Watch] = {}  # JSON of the request id -> watch
        self.entry_key: str | None = None  # handshake key of this session
        self.served_initialize = False
        self.need_tools_capture = False
        self.private = 0
        self.looked = 0

    def private_request(self, method: str, params: Any, served: Json | None) -> str:
        """A copy of a request under a private id, watched and dropped."""
        self.private += 1
        rid = f"{PRIVATE_ID}{self.private}"
        assert self.entry_key is not None
        self.watches[json.dumps(rid)] = Watch(self.entry_key, method, True, served)
        message: Json = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            message["params"] = params
        return _line(message)

    def early(self, line: str, write: Callable[[str], None]) -> None:
        """A line that arrived before the SDK: answered from the snapshot, or held."""
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict) or "id" not in message:
            self._hold(line, message)
            return
        method, rid, params = message.get("method"), message["id"], message.get("params")
        entries = self.snapshot.entries
        if method == "initialize" and self.entry_key is None:
            self.entry_key = handshake_key(params)
            entry = entries.get(self.entry_key)
            # No recorded tool list for this handshake: ask the SDK for one after initialized.
            self.need_tools_capture = not (entry and "tools/list" in entry)
            if entry and "initialize" in entry:
                write(_line({"jsonrpc": "2.0", "id": rid, "result": entry["initialize"]}))
                self.served_initialize = True
                self.held.append(self.private_request(method, params, entry["initialize"]))
                return
            self._hold(line, message)
            return
        if self.served_initialize and method == "ping":
            write(_line({"jsonrpc": "2.0", "id": rid, "result": {}}))
            return
        first_page = params is None or (isinstance(params, dict) and not params.get("cursor"))
        if self.served_initialize and method == "tools/list" and first_page:
            entry = entries.get(self.entry_key or "", {})
            if "tools/list" in entry:
                write(_line({"jsonrpc": "2.0", "id": rid, "result": entry["tools/list"]}))
                self.held.append(self.private_request(method, params, entry["tools/list"]))
                return
        self._hold(line, message)

    def _hold(self, line: str, message: Any) -> None:
        self.held.append(line)
        if not isinstance(message, dict) or "id" not in message:
            return
        if message.get("method") == "initialize" and not self.served_initialize:
            self._watch_answer(message)

    def _watch_answer(self, message: Json) -> None:
        """Answered by the SDK: its answer is recorded for the next start."""
        if self.entry_key is not None:
            watch = Watch(self.entry_key, str(message.get("method")), False)
            self.watches[json.dumps(message["id"])] = watch

    def observe(self, line: str) -> str | None:
        """Look at a line on its way to the SDK. An initialize the snapshot could not answer
        (none yet, or it came after the SDK was ready) is watched so its answer is recorded;
        after the client's initialized notification, a private tools/list to record when the
        snapshot has none for this handshake. Only the first lines are looked at."""
        if self.looked >= OBSERVED_LINES:
            return None
        self.looked += 1
        if self.entry_key is None and '"initialize"' in line:
            try:
                message = json.loads(line)
            except ValueError:
                return None
            if isinstance(message, dict) and message.get("method") == "initialize":
                self.entry_key = handshake_key(message.get("params"))
                entry = self.snapshot.entries.get(self.entry_key)
                self.need_tools_capture = not (entry and "tools/list" in entry)
                if "id" in message:
                    self._watch_answer(message)
            return None
        if not self.need_tools_capture or "notifications/initialized" not in line:
            return None
        self.need_tools_capture = False
        return self.private_request("tools/list", None, None)

    def answered(self, watch: Watch, message: Json) -> Json | None:
        """Record the SDK's answer; a notification to send the client if its tool list was
        wrong."""
        result = message.get("result")
        if not isinstance(result, dict):
            return None  # an error answer is never recorded
        if watch.served is not None and watch.served == result:
            return None
        entry = self.snapshot.entries.setdefault(watch.key, {})
        entry[watch.method] = result
        self.snapshot.save()
        if watch.served is not None:
            log.warning("MCP start snapshot was stale (%s); replaced", watch.method)
            if watch.method == "tools/list":
                return {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
        return None


REQUEST_ID = re.compile(r'\{"jsonrpc":"2\.0","id":("(?:[^"\\]|\\.)*"|-?\d+),"method"')
RESPONSE_ID = re.compile(r'\{"jsonrpc":"2\.0","id":("(?:[^"\\]|\\.)*"|-?\d+),"(?:result|error)"')


def _id_key(token: str) -> str:
    """One spelling per JSON-RPC id (a token as written, or a parsed id)."""
    return json.dumps(json.loads(token))


class Outstanding:
    """Requests handed to the SDK and not answered yet, so that a client that closes stdin
    after its last request still gets every answer before the server exits (the SDK's own
    transport drops what is in flight at end of input)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.answered_one = asyncio.Event()

    def sent(self, line: str) -> None:
        """Note a line going to the SDK if it is a request."""
        match = REQUEST_ID.match(line)
        if match:
            self.ids.add(_id_key(match.group(1)))
            return
        if '"method"' not in line or '"id"' not in line:
            return  # a notification (or not JSON-RPC at all)
        try:
            message = json.loads(line)
        except ValueError:
            return
        if isinstance(message, dict) and "method" in message and "id" in message:
            self.ids.add(json.dumps(message["id"]))

    def answered(self, text: str) -> None:
        """Note a line from the SDK if it answers a request."""
        match = RESPONSE_ID.match(text)
        if match:
            self.ids.discard(_id_key(match.group(1)))
            self.answered_one.set()

    async def settle(self, writer: LineWriter) -> None:
        """Wait until every request is answered, or the client stops reading."""
        while self.ids and not writer.closing:
            self.answered_one.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.answered_one.wait(), SETTLE_POLL_S)


class SdkStdin:
    """What the SDK's stdio_server iterates: the held lines (private replays included), the
    line being read when the SDK became ready, then the wire; at its end, only once every
    request has been answered."""

    def __init__(
        self,
        reader: LineReader,
        writer: LineWriter,
        state: StartState,
        outstanding: Outstanding,
        pending: asyncio.Task[str | None] | None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.state = state
        self.outstanding = outstanding
        self.pending = pending
        self.extra: collections.deque[str] = collections.deque()

    def __aiter__(self) -> SdkStdin:
        return self

    async def __anext__(self) -> str:
        line = await self._next()
        if line is None:
            await self.outstanding.settle(self.writer)
            raise StopAsyncIteration
        follow = self.state.observe(line)
        if follow is not None:
            self.extra.append(follow)
        self.outstanding.sent(line)
        return line

    async def _next(self) -> str | None:
        if self.extra:
            return self.extra.popleft()
        if self.state.held:
            return self.state.held.popleft()
        if self.pending is not None:
            task, self.pending = self.pending, None
            return await task
        return await self.reader.readline()


class SdkStdout:
    """What the SDK's stdio_server writes to: the wire, minus the answers to private replays
    (looked at only while some are awaited)."""

    def __init__(self, writer: LineWriter, state: StartState, outstanding: Outstanding) -> None:
        self.writer = writer
        self.state = state
        self.outstanding = outstanding

    async def write(self, text: str) -> None:
        self.outstanding.answered(text)
        if self.state.watches and self._intercepted(text):
            return
        self.writer.write(text)

    async def flush(self) -> None:
        with contextlib.suppress(ConnectionError):  # the client is gone: nothing to send to
            await self.writer.drain()

    def _intercepted(self, text: str) -> bool:
        try:
            message = json.loads(text)
        except ValueError:
            return False
        if not isinstance(message, dict) or "method" in message or "id" not in message:
            return False
        watch = self.state.watches.pop(json.dumps(message["id"]), None)
        if watch is None:
            return False
        notice = self.state.answered(watch, message)
        if notice is not None:
            self.writer.write(_line(notice))
        return watch.drop


# ---- serving -----------------------------------------------------------------------------------
Serve = Callable[[Any, Any], Awaitable[None]]  # (sdk stdin, sdk stdout) -> served until EOF


async def serve_on_wire(
    pipes: StdioPipes, ready: asyncio.Future[Serve], snapshot: StartSnapshot
) -> None:
    """Serve the wire: early answers from the snapshot until `ready` gives the SDK's serve
    function, then everything through it. End of input before the SDK is ready still gets
    every held request answered."""
    reader, writer = await open_wire(pipes)
    state = StartState(snapshot)
    pending: asyncio.Task[str | None] | None = None
    try:
        while not ready.done():
            if pending is None:
                pending = asyncio.ensure_future(reader.readline())
            racing: list[asyncio.Future[Any]] = [pending, ready]
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
            if not pending.done():
                break
            line = pending.result()
            if line is None:  # end of input: hand it to the SDK with what is held
                break
            pending = None
            state.early(line, writer.write)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        serve = await ready
        outstanding = Outstanding()
        stdin = SdkStdin(reader, writer, state, outstanding, pending)
        await serve(stdin, SdkStdout(writer, state, outstanding))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
        writer.close()
