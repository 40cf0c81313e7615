"""open_checkpointer for real: a tiny LangGraph graph keeps its state across invocations, across
re-opened checkpointers and across processes, on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
import operator
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from service_dbs import HOST, PG_PORT, postgres_available, require_or_skip

from memory.checkpointer import delete_thread, open_checkpointer, parse_checkpoint_url
from tools.errors import DATABASE_UNREACHABLE, INVALID_CONFIG, SqlsageError

REPO = Path(__file__).resolve().parents[2]
PG_URL = f"postgresql://postgres@{HOST}:{PG_PORT}/test"


class State(TypedDict):
    items: Annotated[list[str], operator.add]


def _echo(state: State) -> dict[str, list[str]]:
    return {"items": [f"seen {len(state['items'])}"]}


def _graph(saver: BaseCheckpointSaver[Any]) -> Any:
    builder = StateGraph(State)
    builder.add_node("echo", _echo)
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    return builder.compile(checkpointer=saver)


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


async def _ask(url: str | None, data_dir: Path, thread_id: str, item: str) -> list[str]:
    async with open_checkpointer(url, data_dir=data_dir) as saver:
        result = await _graph(saver).ainvoke({"items": [item]}, _config(thread_id))
    return list(result["items"])


async def _state(url: str | None, data_dir: Path, thread_id: str) -> list[str]:
    async with open_checkpointer(url, data_dir=data_dir) as saver:
        snapshot = await _graph(saver).aget_state(_config(thread_id))
    return list(snapshot.values.get("items", []))


async def _forget(url: str | None, data_dir: Path, thread_id: str) -> None:
    async with open_checkpointer(url, data_dir=data_dir) as saver:
        await delete_thread(saver, thread_id)


@pytest.fixture()
def pg_url() -> str:
    require_or_skip(postgres_available(), "PostgreSQL")
    return PG_URL


# ---- SQLite ------------------------------------------------------------------------------
def test_default_is_a_wal_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    assert asyncio.run(_ask(None, data_dir, "t1", "a")) == ["a", "seen 1"]
    assert asyncio.run(_ask("", data_dir, "t1", "b")) == ["a", "seen 1", "b", "seen 3"]
    path = data_dir / "checkpoints.sqlite"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_sqlite_url_state_accumulates_and_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mem' / 'cp.db'}"

    async def scenario() -> None:
        async with open_checkpointer(url, data_dir=tmp_path / "unused") as saver:
            graph = _graph(saver)
            await graph.ainvoke({"items": ["q1"]}, _config("s"))
            await graph.ainvoke({"items": ["q2"]}, _config("s"))
            await graph.ainvoke({"items": ["other"]}, _config("s2"))
        # A fresh checkpointer object, as a second process would build it.
        assert await _state(url, tmp_path, "s") == ["q1", "seen 1", "q2", "seen 3"]
        assert await _state(url, tmp_path, "s2") == ["other", "seen 1"]

    asyncio.run(scenario())
    assert (tmp_path / "mem" / "cp.db").is_file()
    assert not (tmp_path / "unused").exists()


def test_second_process_continues_the_session_while_the_first_is_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cp.sqlite'}"
    child = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        sys.path[:0] = [{str(REPO / "tests")!r}, {str(REPO / "tests" / "memory")!r}]
        from test_checkpointer import _ask
        print(asyncio.run(_ask({url!r}, Path({str(tmp_path)!r}), "shared", "from child")))
        """
    )

    async def scenario() -> list[str]:
        async with open_checkpointer(url, data_dir=tmp_path) as saver:
            graph = _graph(saver)
            await graph.ainvoke({"items": ["first"]}, _config("shared"))
            # The other process writes while this one still holds its connection open.
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", child],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert "from child" in done.stdout
            result = await graph.ainvoke({"items": ["last"]}, _config("shared"))
        return list(result["items"])

    items = asyncio.run(scenario())
    assert items == ["first", "seen 1", "from child", "seen 3", "last", "seen 5"]


def test_delete_thread_removes_only_that_session(tmp_path: Path) -> None:
    asyncio.run(_ask(None, tmp_path, "keep", "k"))
    asyncio.run(_ask(None, tmp_path, "drop", "d"))
    asyncio.run(_forget(None, tmp_path, "drop"))
    assert asyncio.run(_state(None, tmp_path, "drop")) == []
    assert asyncio.run(_state(None, tmp_path, "keep")) == ["k", "seen 1"]


def test_memory_url_keeps_state_in_the_saver_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with open_checkpointer("memory", data_dir=tmp_path) as saver:
            assert isinstance(saver, InMemorySaver)
            graph = _graph(saver)
            await graph.ainvoke({"items": ["a"]}, _config("m"))
            result = await graph.ainvoke({"items": ["b"]}, _config("m"))
            assert result["items"] == ["a", "seen 1", "b", "seen 3"]
            await delete_thread(saver, "m")
            assert await saver.aget_tuple(_config("m")) is None
        assert await _state("memory", tmp_path, "m") == []

    asyncio.run(scenario())
    assert list(tmp_path.iterdir()) == []


def test_unwritable_sqlite_location_is_database_unreachable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SqlsageError) as info:
        asyncio.run(_ask(None, blocker / "data", "t", "x"))
    assert info.value.code == DATABASE_UNREACHABLE
    assert str(blocker) in info.value.message and info.value.hint


# ---- URLs --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql://u:p@h:5432/db"),
        ("postgresql+psycopg://u@h/db?sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("postgres://u@h/db", "postgresql://u@h/db"),
        ("  POSTGRES://u@h/db  ", "postgresql://u@h/db"),
    ],
)
def test_postgres_urls_are_normalised(url: str, expected: str, tmp_path: Path) -> None:
    target = parse_checkpoint_url(url, data_dir=tmp_path)
    assert (target.kind, target.location) == ("postgres", expected)


def test_sqlite_urls_resolve_to_files(tmp_path: Path) -> None:
    assert parse_checkpoint_url(None, data_dir=tmp_path).location == str(
        tmp_path / "checkpoints.sqlite"
    )
    assert parse_checkpoint_url("sqlite:////abs/cp.db", data_dir=tmp_path).location == "/abs/cp.db"
    assert parse_checkpoint_url("sqlite:///rel/cp.db", data_dir=tmp_path).location == "rel/cp.db"
    assert parse_checkpoint_url("memory", data_dir=tmp_path).kind == "memory"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root:s3cret@localhost/db",
        "sqlite://",
        "sqlite:///:memory:",
        "redis://:s3cret@localhost:6379/0",
        "checkpoints.sqlite",
        "MEMORY!",
    ],
)
def test_bad_urls_are_invalid_config(url: str, tmp_path: Path) -> None:
    with pytest.raises(SqlsageError) as info:
        asyncio.run(_ask(url, tmp_path, "t", "x"))
    error = info.value
    assert error.code == INVALID_CONFIG
    assert "s3cret" not in str(error)
    assert url.split("s3cret")[-1].strip() in error.message
    assert error.hint and "SQLSAGE_CHECKPOINT_URL" in error.hint and "postgresql://" in error.hint


def test_unreachable_postgres_fails_fast_with_a_hint(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(SqlsageError) as info:
        asyncio.run(_ask(f"postgresql://postgres:hunter2@{HOST}:1/test", tmp_path, "t", "x"))
    assert time.monotonic() - started < 10
    error = info.value
    assert error.code == DATABASE_UNREACHABLE
    assert f"{HOST}:1/test" in error.message and "hunter2" not in str(error)
    assert error.hint and "SQLSAGE_CHECKPOINT_URL" in error.hint


# ---- PostgreSQL --------------------------------------------------------------------------
@pytest.mark.postgres
def test_postgres_state_accumulates_and_survives_reopen(pg_url: str, tmp_path: Path) -> None:
    thread = f"pytest-{uuid.uuid4().hex}"
    url = pg_url.replace("postgresql://", "postgresql+psycopg://")
    try:
        assert asyncio.run(_ask(pg_url, tmp_path, thread, "q1")) == ["q1", "seen 1"]
        assert asyncio.run(_ask(url, tmp_path, thread, "q2")) == ["q1", "seen 1", "q2", "seen 3"]
        assert asyncio.run(_state(pg_url, tmp_path, thread)) == ["q1", "seen 1", "q2", "seen 3"]
        assert list(tmp_path.iterdir()) == []
    finally:
        asyncio.run(_forget(pg_url, tmp_path, thread))
    assert asyncio.run(_state(pg_url, tmp_path, thread)) == []


@pytest.mark.postgres
def test_postgres_replicas_open_concurrently(pg_url: str, tmp_path: Path) -> None:
    threads = [f"pytest-{uuid.uuid4().hex}" for _ in range(4)]

    async def scenario() -> list[list[str]]:
        # Several replicas starting together each run setup(); none may trip over another.
        return await asyncio.gather(*(_ask(pg_url, tmp_path, t, t[-4:]) for t in threads))

    try:
        results = asyncio.run(scenario())
        assert results == [[t[-4:], "seen 1"] for t in threads]
    finally:
        for thread in threads:
            asyncio.run(_forget(pg_url, tmp_path, thread))
