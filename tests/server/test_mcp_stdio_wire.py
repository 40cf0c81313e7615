"""`sqlsage mcp`'s own stdio wire (server/mcp_stdio.py), as a real process on real pipes spoken
to in raw JSON-RPC lines: the first start records the SDK's answers, the next answers
initialize, tools/list and ping from that snapshot while the SDK loads, replays the handshake to
the SDK without the client ever seeing the replay, replaces a stale snapshot (and says
tools/list_changed), answers everything a client sent before closing its input, and falls back
to the SDK's transport for files and on request. The line reader's size limit is tested
directly."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.mcp_stdio import LineReader, handshake_key

from .cli_process import SQLSAGE

INIT_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "raw", "version": "0"},
}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT_PARAMS}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
COUNT = {
    "jsonrpc": "2.0",
    "id": 3,
    "method": "tools/call",
    "params": {"name": "run_sql", "arguments": {"sql": "SELECT COUNT(*) AS n FROM customers"}},
}
PING = {"jsonrpc": "2.0", "id": "p-1", "method": "ping"}
WAIT_S = 60


class RawClient:
    """`sqlsage mcp` on pipes: JSON lines in, JSON lines out (read by a thread into a queue)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [SQLSAGE, "mcp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(b"")

    def send(self, *messages: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
        self.proc.stdin.flush()

    def receive(self, timeout: float = WAIT_S) -> dict[str, Any]:
        line = self.lines.get(timeout=timeout)
        assert line, "the server closed its output"
        message: dict[str, Any] = json.loads(line)
        self.seen.append(message)
        return message

    def answer(self, rid: Any) -> dict[str, Any]:
        """The message answering `rid`: already received (answers may come in any order), or
        the next one that does (whatever comes before it is kept in seen)."""
        for message in self.seen:
            if message.get("id") == rid and "method" not in message:
                return message
        while True:
            message = self.receive()
            if message.get("id") == rid and "method" not in message:
                return message

    def close(self) -> tuple[int, str]:
        """Close its input; its exit code and stderr."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout=WAIT_S)
        self.pump.join(timeout=WAIT_S)
        while not self.lines.empty():
            line = self.lines.get()
            if line:
                self.seen.append(json.loads(line))
        stderr = self.proc.stderr.read().decode() if self.proc.stderr else ""
        self.release()
        return code, stderr

    def release(self) -> None:
        """Kill it if it still runs; close our ends of its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


@pytest.fixture
def env(server_dir: Path, tmp_path: Path) -> dict[str, str]:
    """The sample data directory and a start-snapshot cache of this test's own."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SQLSAGE_")}
    return base | {"SQLSAGE_DATA_DIR": str(server_dir), "XDG_CACHE_HOME": str(tmp_path / "cache")}


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[Any]:
    """Clients opened by the test; any still running at the end is killed."""
    opened: list[RawClient] = []

    def open_client(extra: dict[str, str] | None = None) -> RawClient:
        opened.append(RawClient(env | (extra or {})))
        return opened[-1]

    yield open_client
    for raw in opened:
        raw.release()


def _snapshot_files(env: dict[str, str]) -> list[Path]:
    return sorted((Path(env["XDG_CACHE_HOME"]) / "sqlsage").glob("mcp-start-*.json"))


def _snapshot(env: dict[str, str]) -> dict[str, Any]:
    files = _snapshot_files(env)
    assert len(files) == 1, files
    data: dict[str, Any] = json.loads(files[0].read_text())
    return data


def _wait_for_snapshot(env: dict[str, str], *methods: str) -> dict[str, Any]:
    key = handshake_key(INIT_PARAMS)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if _snapshot_files(env):
            entry = _snapshot(env)["entries"].get(key, {})
            if all(m in entry for m in methods):
                return _snapshot(env)
        time.sleep(0.05)
    raise AssertionError(f"no snapshot with {methods} in {env['XDG_CACHE_HOME']}")


def _no_private_ids(messages: list[dict[str, Any]]) -> None:
    leaked = [m for m in messages if str(m.get("id", "")).startswith("sqlsage-start-")]
    assert not leaked, f"replayed requests' answers reached the client: {leaked}"


def _handshake(raw: RawClient) -> tuple[dict[str, Any], dict[str, Any]]:
    raw.send(INITIALIZE)
    init = raw.answer(1)
    raw.send(INITIALIZED, TOOLS)
    return init, raw.answer(2)


def test_first_start_records_the_sdk_answers_and_the_next_start_uses_them(
    client: Any, env: dict[str, str]
) -> None:
    first = client()
    init, tools = _handshake(first)
    assert init["result"]["serverInfo"]["name"] == "sqlsage"
    names = sorted(t["name"] for t in tools["result"]["tools"])
    assert len(names) == 8 and "run_sql" in names
    recorded = _wait_for_snapshot(env, "initialize", "tools/list")
    code, stderr = first.close()
    assert code == 0 and "Traceback" not in stderr, stderr
    _no_private_ids(first.seen)
    entry = recorded["entries"][handshake_key(INIT_PARAMS)]
    assert entry["initialize"] == init["result"] and entry["tools/list"] == tools["result"]

    # Next start: everything at once, before the SDK can have loaded.
    second = client()
    second.send(INITIALIZE, INITIALIZED, TOOLS, PING, COUNT)
    assert second.answer(1)["result"] == init["result"]
    assert second.answer(2)["result"] == tools["result"]
    assert second.answer("p-1")["result"] == {}
    counted = second.answer(3)["result"]
    assert counted["structuredContent"]["rows"] == [[1500]], counted
    code, stderr = second.close()
    assert code == 0 and "Traceback" not in stderr, stderr
    _no_private_ids(second.seen)
    assert not [m for m in second.seen if m.get("method") == "notifications/tools/list_changed"]


def test_a_stale_snapshot_is_served_then_replaced_and_the_client_told(
    client: Any, env: dict[str, str]
) -> None:
    first = client()
    _, real_tools = _handshake(first)
    _wait_for_snapshot(env, "initialize", "tools/list")
    first.close()
    # Make the snapshot lie (as a snapshot recorded by other code would), keeping its identity.
    path = _snapshot_files(env)[0]
    data = json.loads(path.read_text())
    entry = data["entries"][handshake_key(INIT_PARAMS)]
    entry["initialize"]["instructions"] = "stale instructions"
    stale_tool = dict(real_tools["result"]["tools"][0], name="stale_tool")
    entry["tools/list"]["tools"].append(stale_tool)
    path.write_text(json.dumps(data))

    raw = client()
    init, tools = _handshake(raw)
    # Only the snapshot could say these: the answers came before (and without) the SDK.
    assert init["result"]["instructions"] == "stale instructions"
    assert "stale_tool" in {t["name"] for t in tools["result"]["tools"]}
    # The SDK's own answers replace the snapshot, and the client is told to list again.
    while raw.receive().get("method") != "notifications/tools/list_changed":
        pass
    raw.send(dict(TOOLS, id=22))
    fresh = raw.answer(22)["result"]
    assert fresh == real_tools["result"]
    code, stderr = raw.close()
    assert code == 0 and "Traceback" not in stderr, stderr
    assert "stale" in stderr  # a warning says the snapshot was replaced
    _no_private_ids(raw.seen)
    repaired = _snapshot(env)["entries"][handshake_key(INIT_PARAMS)]
    assert repaired["tools/list"] == real_tools["result"]
    assert repaired["initialize"]["instructions"] != "stale instructions"


def test_input_closed_right_after_the_requests_still_gets_every_answer(
    client: Any, env: dict[str, str]
) -> None:
    for start in ("without a snapshot", "with a snapshot"):
        raw = client()
        raw.send(INITIALIZE, INITIALIZED, TOOLS, COUNT)
        code, stderr = raw.close()  # before the SDK has loaded
        assert code == 0 and "Traceback" not in stderr, (start, stderr)
        answered = {m["id"]: m for m in raw.seen if "id" in m}
        assert sorted(answered, key=str) == [1, 2, 3], (start, raw.seen)
        assert answered[3]["result"]["structuredContent"]["rows"] == [[1500]]
        _no_private_ids(raw.seen)
        _wait_for_snapshot(env, "initialize", "tools/list")


def test_a_client_gone_before_the_sdk_is_ready_ends_the_server_quietly(
    env: dict[str, str],
) -> None:
    proc = subprocess.Popen(
        [SQLSAGE, "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(json.dumps(INITIALIZE).encode() + b"\n" + json.dumps(COUNT).encode() + b"\n")
    proc.stdin.flush()
    # Gone: neither end of its pipes is ours any more, its answers have nowhere to go.
    proc.stdin.close()
    proc.stdout.close()
    try:
        assert proc.wait(timeout=WAIT_S) == 0
        stderr = proc.stderr.read().decode()
    finally:
        proc.stderr.close()
    assert "Traceback" not in stderr, stderr


def test_a_file_on_stdin_and_the_sdk_setting_use_the_sdk_transport(
    env: dict[str, str], tmp_path: Path
) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps(m) + "\n" for m in (INITIALIZE, INITIALIZED, TOOLS)))
    with requests.open("rb") as stdin:
        done = subprocess.run(
            [SQLSAGE, "mcp"], stdin=stdin, capture_output=True, env=env, timeout=WAIT_S
        )
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert answers[0]["id"] == 1 and answers[0]["result"]["serverInfo"]["name"] == "sqlsage"
    assert _snapshot_files(env) == []  # the SDK's transport keeps no snapshot
    # On pipes, SQLSAGE_MCP_STDIO=sdk asks for the SDK's transport too.
    raw = RawClient(env | {"SQLSAGE_MCP_STDIO": "sdk"})
    try:
        _, tools = _handshake(raw)
        assert len(tools["result"]["tools"]) == 8
        raw.send(COUNT)
        assert raw.answer(3)["result"]["structuredContent"]["rows"] == [[1500]]
    finally:
        code, stderr = raw.close()
    assert code == 0 and "Traceback" not in stderr
    assert _snapshot_files(env) == []


def test_a_bad_stdio_setting_is_refused_before_serving(env: dict[str, str]) -> None:
    done = subprocess.run(
        [SQLSAGE, "mcp"],
        input=b"",
        capture_output=True,
        env=env | {"SQLSAGE_MCP_STDIO": "fast"},
        timeout=WAIT_S,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert "mcp_stdio" in stderr and "'loop' or 'sdk'" in stderr and "Traceback" not in stderr


def test_a_1_mb_sql_over_the_wire_is_refused_and_the_next_call_answered(client: Any) -> None:
    raw = client()
    _handshake(raw)
    huge = {
        "jsonrpc": "2.0",
        "id": 40,
        "method": "tools/call",
        "params": {"name": "run_sql", "arguments": {"sql": "SELECT 1 " + " " * 1_000_000}},
    }
    raw.send(huge, COUNT)
    refused = raw.answer(40)["result"]
    assert refused["isError"] is True
    assert "[invalid_argument]" in refused["content"][0]["text"]
    assert "the limit is 1,000,000" in refused["content"][0]["text"]
    assert raw.answer(3)["result"]["structuredContent"]["rows"] == [[1500]]
    code, stderr = raw.close()
    assert code == 0 and "Traceback" not in stderr, stderr


def test_an_unwritable_cache_costs_only_the_fast_start(
    client: Any, env: dict[str, str], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    raw = client({"XDG_CACHE_HOME": str(blocker)})
    _, tools = _handshake(raw)
    assert len(tools["result"]["tools"]) == 8
    raw.send(COUNT)
    assert raw.answer(3)["result"]["structuredContent"]["rows"] == [[1500]]
    code, stderr = raw.close()
    assert code == 0 and "Traceback" not in stderr, stderr
    assert blocker.read_text() == "x"


def _lines(chunks: list[bytes], limit: int) -> list[str | None]:
    async def main() -> list[str | None]:
        stream = asyncio.StreamReader(limit=limit)
        for chunk in chunks:
            stream.feed_data(chunk)
        stream.feed_eof()
        reader = LineReader(stream)
        out: list[str | None] = []
        while True:
            line = await reader.readline()
            out.append(line)
            if line is None:
                return out

    return asyncio.run(main())


def test_the_line_reader_drops_a_line_over_its_limit_and_goes_on() -> None:
    long = b'{"sql": "' + b"x" * 200 + b'"}\n'
    # The long line whole in the buffer, split across feeds, and last without a newline.
    assert _lines([b'{"a":1}\n', long, b'{"b":2}\n'], 64) == ['{"a":1}\n', '{"b":2}\n', None]
    halves = [long[:50], long[50:150], long[150:] + b'{"c":3}\n']
    assert _lines([b'{"a":1}\n', *halves], 64) == ['{"a":1}\n', '{"c":3}\n', None]
    assert _lines([b'{"a":1}\n', long.rstrip()], 64) == ['{"a":1}\n', None]
    # Invalid UTF-8 is replaced, as the SDK's reader does; a last line without newline is kept.
    assert _lines([b'{"a":"\xff"}\n{"d":4}'], 64) == ['{"a":"\ufffd"}\n', '{"d":4}', None]
