"""Bad input over MCP: each gets a tool error with the real message and a hint, nothing is
written, and the server keeps answering (slow queries, disconnects, concurrent calls)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from server.mcp import build_mcp_server
from server.mcp_toolbox import McpToolbox

from ..tools.test_validate_fixtures import load_cases
from .instant_model import InstantModel
from .mcp_helpers import MODES, digest, text_of, with_mcp

WRITES = [c for c in load_cases() if c.file == "writes.sql"]
SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000) "
    "SELECT COUNT(*) AS n FROM c"
)


def _error(result: Any) -> str:
    assert result.is_error, f"not refused: {text_of(result)[:300]}"
    assert result.structured_content is None
    return text_of(result)


@pytest.mark.parametrize("mode", MODES)
def test_bad_arguments_are_tool_errors_that_name_the_problem(server_dir: Path, mode: str) -> None:
    async def scenario(client: Client, toolbox: McpToolbox) -> dict[str, str]:
        calls = {
            "unknown tool": ("drop_everything", {}),
            "sql not a string": ("run_sql", {"sql": 5}),
            "k not a number": ("semantic_search", {"question": "x", "k": "many"}),
            "tables not a list": ("schema_lookup", {"tables": 7}),
            "missing sql": ("run_sql", {}),
            "max_rows 0": ("run_sql", {"sql": "SELECT 1", "max_rows": 0}),
            "max_rows huge": ("run_sql", {"sql": "SELECT 1", "max_rows": 10**9}),
            "max_rows over the db cap": ("run_sql", {"sql": "SELECT 1", "max_rows": 5000}),
            "unknown db": ("run_sql", {"sql": "SELECT 1", "db": "salse"}),
            "unknown db (schema)": ("schema_lookup", {"db": "salse"}),
            "bad detail": ("schema_lookup", {"detail": "everything"}),
            "bad chart type": ("build_chart", {"sql": "SELECT 1 AS a", "type": "radar"}),
            "chart misfit": (
                "build_chart",
                {"sql": "SELECT name FROM regions", "type": "line", "y": "nope"},
            ),
            "bad dialect": ("validate_sql", {"sql": "SELECT 1", "from_dialect": "cobol"}),
            "empty question": ("semantic_search", {"question": "  "}),
            "bad example": ("add_example", {"question": "q?", "sql": "SELECT nope FROM orders"}),
            "1 MB of SQL": ("run_sql", {"sql": "SELECT 1 " + " " * 1_048_576}),
        }
        return {label: _error(await client.call_tool(n, a)) for label, (n, a) in calls.items()}

    errors = with_mcp(server_dir, scenario, mode=mode)
    assert "Unknown tool: drop_everything" in errors["unknown tool"]
    assert "sql" in errors["sql not a string"] and "valid string" in errors["sql not a string"]
    assert "k" in errors["k not a number"] and "integer" in errors["k not a number"]
    assert "tables" in errors["tables not a list"]
    assert "sql" in errors["missing sql"] and "required" in errors["missing sql"].lower()
    assert (
        "max_rows" in errors["max_rows 0"] and "greater than or equal to 1" in errors["max_rows 0"]
    )
    assert "max_rows" in errors["max_rows huge"] and "100000" in errors["max_rows huge"]
    assert "above the cap of 1000" in errors["max_rows over the db cap"]
    assert "Unknown database 'salse'" in errors["unknown db"] and "sample" in errors["unknown db"]
    assert "Unknown database 'salse'" in errors["unknown db (schema)"]
    assert "detail" in errors["bad detail"]
    assert "radar" in errors["bad chart type"]
    assert "Hint:" in errors["chart misfit"]
    assert "cobol" in errors["bad dialect"]
    assert "Hint:" in errors["empty question"]
    assert "unknown_column" in errors["bad example"] and "Hint:" in errors["bad example"]
    assert "the limit is 1,000,000" in errors["1 MB of SQL"]
    # Never a traceback, never a bare exception name without its message.
    assert not any("Traceback" in e for e in errors.values())


def test_validate_sql_dry_runs_huge_and_broken_sql_as_diagnostics(server_dir: Path) -> None:
    async def scenario(client: Client, toolbox: McpToolbox) -> list[Any]:
        return [
            await client.call_tool("validate_sql", {"sql": sql})
            for sql in ("SELECT 1 " + " " * 1_048_576, "SELEC name FROM customers", "")
        ]

    huge, broken, empty = with_mcp(server_dir, scenario)
    assert not huge.is_error and huge.structured_content["valid"] is False
    assert "the limit is 1,000,000" in huge.structured_content["errors"][0]["message"]
    # The megabyte is not echoed back (once, shortened, and not per error).
    assert len(str(huge.structured_content)) < 5000
    assert broken.structured_content["errors"][0]["code"] == "parse_error"
    assert broken.structured_content["errors"][0]["line"] == 1
    assert empty.structured_content["errors"][0]["code"] == "empty_sql"


@pytest.mark.parametrize("tool", ["run_sql", "validate_sql"])
def test_every_write_attempt_is_refused_and_the_database_is_unchanged(
    server_dir: Path, tool: str
) -> None:
    database = server_dir / "sample.sqlite"
    before = digest(database)
    assert len(WRITES) >= 30

    async def scenario(client: Client, toolbox: McpToolbox) -> list[tuple[Any, Any]]:
        return [(case, await client.call_tool(tool, {"sql": case.sql})) for case in WRITES]

    for case, result in with_mcp(server_dir, scenario):
        if tool == "run_sql":
            text = _error(result)
        else:
            assert not result.is_error and result.structured_content["valid"] is False, case.id
            text = text_of(result)
        if case.dialect == "sqlite":
            assert f"[{case.code}]" in text, (case.id, text)
        assert "Hint:" in text, case.id
    assert digest(database) == before


def test_a_slow_query_times_out_while_other_calls_are_answered(server_dir: Path) -> None:
    sample = server_dir / "sample.sqlite"

    async def scenario(client: Client, toolbox: McpToolbox) -> tuple[Any, float, list[float]]:
        started = time.perf_counter()
        slow = asyncio.create_task(client.call_tool("run_sql", {"sql": SLOW_SQL, "db": "slow"}))
        await asyncio.sleep(0.2)
        fast_done: list[float] = []
        for i in range(5):
            result = await client.call_tool("run_sql", {"sql": f"SELECT {i} AS n"})
            assert result.structured_content["rows"] == [[i]]
            fast_done.append(time.perf_counter() - started)
        slow_result = await slow
        return slow_result, time.perf_counter() - started, fast_done

    slow, slow_s, fast = with_mcp(
        server_dir, scenario, databases={"slow": {"url": f"sqlite:///{sample}", "timeout_s": 2}}
    )
    text = _error(slow)
    assert "[timeout]" in text and "Hint:" in text
    assert 1.5 < slow_s < 20
    assert max(fast) < 1.5, "the other calls waited for the slow query"


@pytest.mark.parametrize("mode", MODES)
def test_concurrent_calls_from_one_client_each_get_their_own_answer(
    server_dir: Path, mode: str
) -> None:
    async def scenario(client: Client, toolbox: McpToolbox) -> list[Any]:
        calls = [
            client.call_tool("run_sql", {"sql": f"SELECT {i} AS n, 'x{i}' AS s"}) for i in range(24)
        ]
        calls.append(client.call_tool("validate_sql", {"sql": "SELECT segmnt FROM customers"}))
        calls.append(client.call_tool("schema_lookup", {"tables": ["regions"]}))
        return list(await asyncio.gather(*calls))

    results = with_mcp(server_dir, scenario, mode=mode)
    for i, result in enumerate(results[:24]):
        assert result.structured_content["rows"] == [[i, f"x{i}"]]
    assert results[24].structured_content["errors"][0]["did_you_mean"] == "segment"
    assert results[25].structured_content["tables"][0]["name"] == "regions"


@pytest.mark.parametrize("mode", MODES)
def test_a_client_that_disconnects_mid_ask_leaves_a_complete_turn(
    server_dir: Path, mode: str
) -> None:
    slow = InstantModel(delay_s=0.4)

    async def scenario(client: Client, toolbox: McpToolbox) -> tuple[Any, Any, Any]:
        progressed = asyncio.Event()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progressed.set()

        async def doomed() -> None:
            async with Client(build_mcp_server(toolbox), mode=mode) as other:
                await other.call_tool(
                    "ask", {"question": "Customers per segment?"}, progress_callback=on_progress
                )

        task = asyncio.create_task(doomed())
        await asyncio.wait_for(progressed.wait(), 30)
        task.cancel()  # the client goes away mid-turn
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # Meanwhile the server answers others.
        meanwhile = await client.call_tool("run_sql", {"sql": "SELECT 7 AS n"})
        assert toolbox.runner is not None and toolbox._turns, "the turn was cancelled with it"
        await asyncio.wait(set(toolbox._turns), timeout=60)
        sessions = toolbox.runner.sessions.list(owner="local")
        assert len(sessions) == 1 and sessions[0].turns == 1
        assert sessions[0].message_count > 1, "the turn's messages were not checkpointed"
        follow = await client.call_tool(
            "ask", {"question": "and as a bar chart?", "session_id": sessions[0].session_id}
        )
        return meanwhile, sessions[0], follow

    meanwhile, session, follow = with_mcp(server_dir, scenario, mode=mode, model=slow)
    assert meanwhile.structured_content["rows"] == [[7]]
    assert not follow.is_error, text_of(follow)
    assert follow.structured_content["status"] == "answered"
    assert follow.structured_content["turn"] == 2
    assert follow.structured_content["session_id"] == session.session_id


@pytest.mark.parametrize("mode", MODES)
def test_bad_resource_uris_are_errors_that_say_why(server_dir: Path, mode: str) -> None:
    async def scenario(client: Client, toolbox: McpToolbox) -> list[str]:
        messages = []
        for uri in ("schema://salse", "schema://sample/custmers", "knowledge://salse"):
            with pytest.raises(Exception) as failure:
                await client.read_resource(uri)
            messages.append(str(failure.value))
        return messages

    unknown_db, unknown_table, unknown_knowledge = with_mcp(server_dir, scenario, mode=mode)
    assert "Unknown database 'salse'" in unknown_db and "sample" in unknown_db
    assert "custmers" in unknown_table and "customers" in unknown_table
    assert "Unknown database 'salse'" in unknown_knowledge
