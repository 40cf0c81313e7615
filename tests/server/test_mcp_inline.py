"""A stdio MCP server (one client) starts SQLite queries on the event loop; one that runs past
its inline budget moves to a worker thread, so the loop is held up for milliseconds at most."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from server.mcp_toolbox import INLINE_BUDGET_S, McpToolbox
from server.resources import build_resources
from server.settings import Settings
from tools.errors import SqlsageError

# ~3-6 s of SQLite work on this machine: far past the inline budget, well inside the limit.
SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
    "SELECT COUNT(*) AS n FROM c"
)


def _run(toolbox: McpToolbox, sql: str) -> tuple[Any, list[str]]:
    """The tool result and the threads _run_sql ran on (as names)."""
    threads: list[str] = []
    real = McpToolbox._run_sql

    def spy(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args)

    toolbox._run_sql = spy  # type: ignore[method-assign]
    return asyncio.run(toolbox.run_sql("sample", sql, None)), threads


@pytest.fixture
def resources(tmp_path: Path) -> Any:
    built = build_resources(Settings(data_dir=tmp_path))
    yield built
    built.close()


def test_a_fast_query_runs_on_the_loop_only_when_the_server_has_one_client(
    resources: Any,
) -> None:
    inline = McpToolbox(resources, inline_sqlite=True)
    result, threads = _run(inline, "SELECT COUNT(*) AS n FROM customers")
    assert not result.is_error and result.structured_content["rows"][0][0] > 0
    assert threads == ["MainThread"]
    shared = McpToolbox(resources)  # the mounted /mcp: many clients, always a worker thread
    result, threads = _run(shared, "SELECT COUNT(*) AS n FROM customers")
    assert not result.is_error and threads and threads[0] != "MainThread"


def test_a_slow_query_moves_to_a_thread_and_the_loop_stays_free(resources: Any) -> None:
    toolbox = McpToolbox(resources, inline_sqlite=True)

    async def scenario() -> tuple[Any, float]:
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        result = await toolbox.run_sql("sample", SLOW, None)
        tick.cancel()
        return result, max(gaps)

    result, longest_gap = asyncio.run(scenario())
    assert not result.is_error, result.content
    assert result.structured_content["rows"] == [[3000000]]
    # The inline attempt held the loop for its budget plus one progress-check interval; the
    # rest ran in a thread while the loop kept ticking.
    assert longest_gap < INLINE_BUDGET_S + 0.25, longest_gap


@pytest.mark.parametrize(
    ("sql", "code"),
    [("SELECT * FROM no_such_table", "unknown_table"), ("DELETE FROM customers", "not_read_only")],
)
def test_errors_on_the_inline_path_are_the_thread_paths_errors(
    resources: Any, sql: str, code: str
) -> None:
    raised = []
    for toolbox in (McpToolbox(resources, inline_sqlite=True), McpToolbox(resources)):
        with pytest.raises(SqlsageError) as error:
            _run(toolbox, sql)
        raised.append((error.value.code, error.value.message))
    assert raised[0] == raised[1] and raised[0][0] == code
