"""The MCP server over its real transports: `sqlsage mcp` as a subprocess on stdio (as Claude
Desktop/Code run it), `sqlsage mcp --transport http` and the main server's /mcp on a socket
with and without a key, Host/Origin checks, and the MCP Inspector CLI as an independent
client."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from service_dbs import require_or_skip

from .cli_process import SQLSAGE
from .instant_model import InstantModel
from .live_server import live_server
from .mcp_helpers import MODES, digest, text_of
from .test_http_chat import settings_for

KEY = "mcp-test-key-1234567890"
INSPECTOR = "@modelcontextprotocol/inspector@0.15.0"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLSAGE_")}
    return env | {"SQLSAGE_DATA_DIR": str(data_dir), **extra}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("mode", MODES)
def test_stdio_subprocess_serves_tools_resources_and_the_builtin_agent(
    server_dir: Path, mode: str
) -> None:
    params = StdioServerParameters(command=SQLSAGE, args=["mcp"], env=_env(server_dir))
    database = server_dir / "sample.sqlite"
    before = digest(database)

    async def main() -> tuple[list[str], Any, Any, Any, Any]:
        async with Client(params, mode=mode, read_timeout_seconds=120) as client:
            names = sorted(t.name for t in (await client.list_tools()).tools)
            rows = await client.call_tool(
                "run_sql", {"sql": "SELECT name FROM regions ORDER BY name"}
            )
            write = await client.call_tool("run_sql", {"sql": "DELETE FROM orders"})
            table = await client.read_resource("schema://sample/regions")
            answer = await client.call_tool(
                "ask", {"question": "How many customers are there in each segment?"}
            )
            return names, rows, write, table, answer

    names, rows, write, table, answer = asyncio.run(main())
    assert "run_sql" in names and "ask" in names and len(names) == 8
    assert [r[0] for r in rows.structured_content["rows"]][:2] == ["Asia Pacific", "Europe"]
    assert write.is_error and "[not_read_only]" in text_of(write)
    assert "CREATE TABLE regions" in table.contents[0].text
    assert answer.structured_content["status"] == "answered", text_of(answer)
    assert "GROUP BY" in answer.structured_content["sql"].upper()
    assert answer.structured_content["row_count"] == 3
    assert digest(database) == before


def test_stdio_refuses_bad_options_on_stderr_before_serving(server_dir: Path) -> None:
    for args, needle in [
        (["mcp", "--db", "nope"], "Unknown database 'nope'"),
        (["mcp", "--transport", "carrier-pigeon"], "Unknown transport 'carrier-pigeon'"),
        (["mcp", "--transport", "http", "--host", "0.0.0.0"], "without API keys"),
    ]:
        done = subprocess.run(
            [SQLSAGE, *args], env=_env(server_dir), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, done.stderr
        assert needle in done.stderr and "Hint:" in done.stderr
        assert done.stdout == "" and "Traceback" not in done.stderr


@pytest.fixture
def http_mcp(server_dir: Path) -> Iterator[str]:
    """`sqlsage mcp --transport http` with an API key, on a free loopback port."""
    port = _free_port()
    proc = subprocess.Popen(
        [SQLSAGE, "mcp", "--transport", "http", "--port", str(port)],
        env=_env(server_dir, SQLSAGE_API_KEYS=f"{KEY}=alice"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"sqlsage mcp did not start: {proc.communicate()[1]}") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
        assert "Traceback" not in err, err
        assert f"serving on http://127.0.0.1:{port}/mcp" in out


async def _list_and_run(url: str, headers: dict[str, str], mode: str) -> tuple[list[str], Any]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        names = [t.name for t in (await client.list_tools()).tools]
        return names, await client.call_tool("run_sql", {"sql": "SELECT 6 * 7 AS answer"})


@pytest.mark.parametrize("mode", MODES)
def test_streamable_http_needs_the_api_key(http_mcp: str, mode: str) -> None:
    names, result = asyncio.run(_list_and_run(http_mcp, {"authorization": f"Bearer {KEY}"}, mode))
    assert len(names) == 8 and result.structured_content["rows"] == [[42]]
    for headers in ({}, {"authorization": "Bearer wrong"}):
        with pytest.raises(Exception) as failure:
            asyncio.run(_list_and_run(http_mcp, headers, mode))
        # The SDK client reports an HTTP 401 as a failed request (the raw 401 and its JSON
        # error are checked in test_http_refusals_say_why).
        assert "MCPError" in repr(failure.value) or "401" in repr(failure.value)


def test_http_refusals_say_why(http_mcp: str) -> None:
    no_key = httpx.post(http_mcp, json=INIT, headers=MCP_HEADERS, timeout=30)
    assert no_key.status_code == 401 and no_key.headers["www-authenticate"].startswith("Bearer")
    error = no_key.json()["error"]
    assert error["code"] == "unauthorized" and "SQLSAGE_API_KEYS" in (error["hint"] or "")
    auth = MCP_HEADERS | {"authorization": f"Bearer {KEY}"}
    ok = httpx.post(http_mcp, json=INIT, headers=auth, timeout=30)
    assert ok.status_code == 200
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host/Origin.
    port = http_mcp.split(":")[2].split("/")[0]
    rebound = httpx.post(
        http_mcp, json=INIT, headers=auth | {"host": f"evil.example:{port}"}, timeout=30
    )
    assert rebound.status_code in (403, 421)
    cross = httpx.post(
        http_mcp, json=INIT, headers=auth | {"origin": "http://evil.example"}, timeout=30
    )
    assert cross.status_code == 403


def test_main_server_mounts_mcp_behind_its_keys(server_dir: Path, instant: InstantModel) -> None:
    other = "mcp-other-key-0987654321"
    settings = settings_for(server_dir, api_keys=f"{KEY}=bob,{other}=carol")
    with live_server(settings, model_factory=lambda spec: instant) as srv:
        url = f"{srv.url}/mcp"
        names, result = asyncio.run(_list_and_run(url, {"x-api-key": KEY}, "legacy"))
        assert len(names) == 8 and result.structured_content["rows"] == [[42]]
        assert httpx.post(url, json=INIT, headers=MCP_HEADERS, timeout=30).status_code == 401

        async def ask(key: str, **args: Any) -> Any:
            async with (
                httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=60) as http,
                Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
            ):
                return await client.call_tool("ask", {"question": "Customers per segment?", **args})

        answer = asyncio.run(ask(KEY))
        assert answer.structured_content["status"] == "answered", text_of(answer)
        # The session belongs to the key's user, like sessions made through the chat API:
        # another user cannot continue it (nor learn that it exists).
        session_id = answer.structured_content["session_id"]
        assert srv.state.sessions.get(session_id).owner == "bob"
        stolen = asyncio.run(ask(other, session_id=session_id))
        assert stolen.is_error and "[not_found]" in text_of(stolen)
        assert srv.state.sessions.get(session_id).turns == 1


def _inspector(server_dir: Path, *args: str) -> Any:
    npx = shutil.which("npx")
    require_or_skip(npx is not None, "Node.js npx (for the MCP Inspector)", "PATH")
    done = subprocess.run(
        [npx, "-y", INSPECTOR, "--cli", SQLSAGE, "mcp", *args],
        env=_env(server_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_mcp_inspector_cli_lists_and_calls_tools(server_dir: Path) -> None:
    listed = _inspector(server_dir, "--method", "tools/list")
    tools = {t["name"]: t for t in listed["tools"]}
    assert len(tools) == 8 and tools["run_sql"]["annotations"]["readOnlyHint"] is True
    assert (
        "outputSchema" in tools["run_sql"] and "sql" in tools["run_sql"]["inputSchema"]["required"]
    )
    called = _inspector(
        server_dir,
        "--method",
        "tools/call",
        "--tool-name",
        "run_sql",
        "--tool-arg",
        "sql=SELECT COUNT(*) AS n FROM customers",
    )
    # 0.15 exits 0 even on a tool error: the JSON says.
    assert called.get("isError") in (None, False), called
    assert called["structuredContent"]["rows"] == [[1500]]
    refused = _inspector(
        server_dir,
        "--method",
        "tools/call",
        "--tool-name",
        "run_sql",
        "--tool-arg",
        "sql=DROP TABLE orders",
    )
    assert refused["isError"] is True and "not_read_only" in refused["content"][0]["text"]
