"""Agent overhead: per-question wall time of the sqlsage graph with an instant scripted model,
split into tool time and framework overhead, next to the plain LangChain SQL agent.

Ours: TurnRunner over graphs/text_to_sql.py on the bundled sample database. Each question is a
new session; the scripted model makes 4 replies (semantic_search, run_sql, build_chart, then an
answer whose figures pass the number check); the graph's retrieve node runs first. Checkpointer
modes: none (build_graph(), no session catalog), SQLite (open_runner: checkpoint file +
sessions.sqlite), PostgreSQL (open_runner on PG_URL, public schema).

    wall       stream() called -> last event received
    tool       ours: elapsed_ms of the `retrieve`, semantic_search, run_sql and build_chart step
               events (so it includes their thread hop and result handling); peer: its tools' _run
    model      time inside the scripted model's own code (benchmarks/_scripted.py)
    framework  wall - tool - model
    fw strict  ours with tool = only the tool functions' own run time (semantic_search, run_sql,
               build_chart, wrapped where graphs/ calls them): what the peer's figure means

Peer: langchain.agents.create_agent(model, tools=SQLDatabaseToolkit(db, llm=model).get_tools())
on the same SQLite file, scripted to sql_db_list_tables, sql_db_schema(customers),
sql_db_query(SQL), then the same answer. sql_db_query_checker stays in the tool list but is not
called: it calls the LLM, so its time would not be tool time. Two drivers:
  peer          astream(stream_mode=["updates", "messages"]) with no checkpointer,
                AsyncSqliteSaver, AsyncPostgresSaver: like for like with ours (TurnRunner is
                async) and the basis of the ratios and verdicts.
  peer (sync)   stream(...) with SqliteSaver / PostgresSaver, as literally asked; reference.
Each peer keeps its PostgreSQL tables in its own schema (dropped at the end) so relation growth
stays apart; our PostgreSQL threads and sessions are deleted at the end.

Per mode the three agents run interleaved (rotating order), so machine noise hits them alike.
Checkpoint bytes per question: stored bytes of the question's thread (SQLite: checkpoint +
metadata blobs and writes; PostgreSQL: checkpoint and metadata as JSON text, blobs, writes),
with file growth (db + WAL) or relation growth beside them. Memory: 100 concurrent sessions
(asyncio.gather of 100 streams, each its own session), peak RSS above the start (VmHWM reset),
each case in a fresh process.

    .venv/bin/python benchmarks/agent_overhead.py [--questions 200] [--skip-pg] [--skip-memory]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import _proc_status_kb, _reset_peak_rss, emit_result, median, percentile, print_table
from _scripted import ModelClock, ScriptedChatModel

warnings.filterwarnings("ignore", message=".*langchain-community.*")

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PEER_SCHEMAS = {"peer": "sqlsage_bench_peer", "peer (sync)": "sqlsage_bench_peer_sync"}
QUESTION = "How many customers are there in each segment?"
SQL = "SELECT segment, COUNT(*) AS customers FROM customers GROUP BY segment ORDER BY segment"
QUESTIONS = 200
WARMUP = 20
SESSIONS = 100
OUR_TOOL_STEPS = ("retrieve", "semantic_search", "run_sql", "build_chart")
SIDES = ("ours", "peer", "peer (sync)")
TARGET_RATIO = 1.0
TARGET_FIRST_EVENT_MS = 5.0
PEER_REFERENCE = (
    "framework p50 ~5 ms (none), ~12.5 ms (SqliteSaver), +~39 KB/question, 1st event ~1 ms"
)
MODEL_CLOCK = ModelClock()


# ---- clocks --------------------------------------------------------------------------------
class Clocks:
    """Seconds spent in wrapped callables, by name (any thread). Questions run one at a time,
    so the difference of two snapshots belongs to the question between them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float) -> None:
        """Count `seconds` under `name`."""
        with self._lock:
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """fn, timed under `name`."""

        @functools.wraps(fn)
        def timed_fn(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - started)

        return timed_fn

    def awrap(self, name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        """Async fn, timed under `name` (wall time of the await)."""

        @functools.wraps(fn)
        async def timed_fn(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - started)

        return timed_fn

    def snapshot(self) -> dict[str, float]:
        """The current totals, plus the scripted model's."""
        with self._lock:
            return {**self.seconds, "model": MODEL_CLOCK.seconds}


CLOCKS = Clocks()


def delta(before: dict[str, float], name: str) -> float:
    """Seconds under `name` since `before`."""
    return CLOCKS.snapshot().get(name, 0.0) - before.get(name, 0.0)


_TIMED_SERDES: set[int] = set()


def time_saver(saver: Any) -> Any:
    """Count a checkpointer's serializer calls under `serialize` (savers may share one)."""
    serde = saver.serde
    if id(serde) not in _TIMED_SERDES:
        _TIMED_SERDES.add(id(serde))
        serde.dumps_typed = CLOCKS.wrap("serialize", serde.dumps_typed)
    return saver


def time_our_code() -> None:
    """Benchmark-only patches of module globals (the code is unchanged): the tool functions
    where graphs/ calls them, and tool_schemas() where call_model calls it."""
    import graphs.nodes as nodes
    import graphs.tool_calls as tool_calls

    for name in ("semantic_search", "run_sql", "build_chart"):
        setattr(tool_calls, name, CLOCKS.wrap("tool", getattr(tool_calls, name)))
    nodes.semantic_search = CLOCKS.wrap("tool", nodes.semantic_search)
    nodes.tool_schemas = CLOCKS.wrap("tool_schemas", nodes.tool_schemas)


def time_catalog(runner: Any) -> None:
    """Count the session catalog's and result store's calls under `catalog` (the async
    methods a turn calls; wall time of each await)."""
    store = runner.sessions
    for name in ("abegin_turn", "afinish_turn"):
        setattr(store, name, CLOCKS.awrap("catalog", getattr(store, name)))
    store.results.aput = CLOCKS.awrap("catalog", store.results.aput)


# ---- the scripts ---------------------------------------------------------------------------
def sample_answer(db_path: Path) -> str:
    """The answer text, with the real figures (so the graph's number check passes)."""
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        rows = conn.execute(SQL).fetchall()
    parts = ", ".join(f"{segment} {count}" for segment, count in rows)
    return f"Customers per segment: {parts}. The chart shows the same split."


def our_model(answer: str) -> ScriptedChatModel:
    """4 replies: semantic_search, run_sql, build_chart, the answer."""
    return ScriptedChatModel(
        steps=[
            ("", [("semantic_search", {"question": QUESTION})]),
            ("", [("run_sql", {"sql": SQL})]),
            ("", [("build_chart", {"chart_type": "bar"})]),
            (answer, []),
        ],
        clock=MODEL_CLOCK,
    )


def peer_model(answer: str) -> ScriptedChatModel:
    """4 replies: sql_db_list_tables, sql_db_schema, sql_db_query, the answer."""
    return ScriptedChatModel(
        steps=[
            ("", [("sql_db_list_tables", {"tool_input": ""})]),
            ("", [("sql_db_schema", {"table_names": "customers"})]),
            ("", [("sql_db_query", {"query": SQL})]),
            (answer, []),
        ],
        clock=MODEL_CLOCK,
    )


# ---- samples -----------------------------------------------------------------------------
@dataclass
class Sample:
    """One question's times, in seconds."""

    wall: float
    first: float
    tool: float
    model: float
    strict_tool: float
    breakdown: dict[str, float] = field(default_factory=dict)

    @property
    def framework(self) -> float:
        """wall - tool - model."""
        return self.wall - self.tool - self.model

    @property
    def strict(self) -> float:
        """wall - tool functions' own time - model."""
        return self.wall - self.strict_tool - self.model


def ms(seconds: float) -> float:
    """Seconds as milliseconds rounded to µs."""
    return round(seconds * 1000, 3)


def summarize(samples: list[Sample]) -> dict[str, Any]:
    """p50/p90 of each figure and the p50 of each breakdown part, in ms."""

    def pcts(values: list[float]) -> dict[str, float]:
        return {"p50_ms": ms(percentile(values, 50)), "p90_ms": ms(percentile(values, 90))}

    keys = samples[0].breakdown if samples else {}
    return {
        "questions": len(samples),
        "wall": pcts([s.wall for s in samples]),
        "tool": pcts([s.tool for s in samples]),
        "model": pcts([s.model for s in samples]),
        "framework": pcts([s.framework for s in samples]),
        "framework_strict": pcts([s.strict for s in samples]),
        "first_event": pcts([s.first for s in samples]),
        "breakdown_p50_ms": {k: ms(median([s.breakdown[k] for s in samples])) for k in keys},
    }


# ---- checkpoint bytes ------------------------------------------------------------------------
def sqlite_files_size(path: Path) -> int:
    """The database file plus its WAL."""
    wal = path.with_name(path.name + "-wal")
    return sum(p.stat().st_size for p in (path, wal) if p.exists())


def sqlite_thread_bytes(path: Path, threads: list[str]) -> dict[str, int]:
    """Checkpoint (+ metadata) and write blob bytes of these threads in a SqliteSaver file."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TEMP TABLE bench_threads (thread_id TEXT PRIMARY KEY)")
        conn.executemany("INSERT INTO bench_threads VALUES (?)", [(t,) for t in threads])
        ours = "thread_id IN (SELECT thread_id FROM bench_threads)"
        checkpoints, cp_bytes = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) "
            f"FROM checkpoints WHERE {ours}"
        ).fetchone()
        writes, w_bytes = conn.execute(
            f"SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0) FROM writes WHERE {ours}"
        ).fetchone()
    return {
        "checkpoints": checkpoints,
        "writes": writes,
        "checkpoint_bytes": cp_bytes,
        "write_bytes": w_bytes,
    }


def sqlite_bytes_by_channel(path: Path, thread: str) -> dict[str, int]:
    """One thread's stored bytes by state channel: the channel values every checkpoint
    carries (re-serialized), the writes (as stored), and the rest of the checkpoint rows."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    serde = JsonPlusSerializer()
    out: dict[str, int] = {}
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT type, checkpoint, LENGTH(checkpoint) + LENGTH(metadata) FROM checkpoints "
            "WHERE thread_id = ?",
            (thread,),
        ).fetchall()
        envelope = 0
        for kind, blob, stored in rows:
            values = serde.loads_typed((kind, blob)).get("channel_values", {})
            sizes = {ch: len(serde.dumps_typed(v)[1]) for ch, v in values.items()}
            for ch, size in sizes.items():
                out[f"checkpoint: {ch}"] = out.get(f"checkpoint: {ch}", 0) + size
            envelope += stored - sum(sizes.values())
        out["checkpoint: ids, versions, metadata"] = envelope
        for channel, size in conn.execute(
            "SELECT channel, SUM(LENGTH(value)) FROM writes WHERE thread_id = ? GROUP BY channel",
            (thread,),
        ):
            out[f"writes: {channel}"] = int(size)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def pg_url(schema: str | None) -> str:
    """PG_URL, with the search_path set to `schema` when given."""
    return PG_URL if schema is None else f"{PG_URL}?options=-csearch_path%3D{schema}"


def pg_relation_bytes(schema: str) -> int:
    """pg_total_relation_size of the checkpoint tables in `schema` (0 for a missing table)."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(to_regclass(s || '.' || t))), 0) "
            "FROM unnest(ARRAY['checkpoints', 'checkpoint_blobs', 'checkpoint_writes']) AS t, "
            "(SELECT %s::text AS s) AS x",
            (schema,),
        ).fetchone()
    return int(row[0]) if row else 0


def pg_thread_bytes(schema: str, threads: list[str]) -> dict[str, int]:
    """Stored bytes of these threads: checkpoint + metadata (JSON text), blobs, writes."""
    import psycopg

    with psycopg.connect(pg_url(schema), autocommit=True) as conn:

        def one(sql: str) -> tuple[int, int]:
            row = conn.execute(sql, (threads,)).fetchone()
            assert row is not None
            return int(row[0]), int(row[1])

        cps, cp_bytes = one(
            "SELECT COUNT(*), COALESCE(SUM(octet_length(checkpoint::text) "
            "+ octet_length(metadata::text)), 0) FROM checkpoints WHERE thread_id = ANY(%s)"
        )
        _, blob_bytes = one(
            "SELECT COUNT(*), COALESCE(SUM(octet_length(blob)), 0) FROM checkpoint_blobs "
            "WHERE thread_id = ANY(%s)"
        )
        writes, w_bytes = one(
            "SELECT COUNT(*), COALESCE(SUM(octet_length(blob)), 0) FROM checkpoint_writes "
            "WHERE thread_id = ANY(%s)"
        )
    return {
        "checkpoints": cps,
        "writes": writes,
        "checkpoint_bytes": cp_bytes + blob_bytes,
        "write_bytes": w_bytes,
    }


def per_question(stored: dict[str, int], questions: int, growth: int) -> dict[str, Any]:
    """Stored bytes and growth, per question."""
    return {
        "checkpoints_per_question": round(stored["checkpoints"] / questions, 2),
        "writes_per_question": round(stored["writes"] / questions, 2),
        "checkpoint_bytes_per_question": round(stored["checkpoint_bytes"] / questions),
        "write_bytes_per_question": round(stored["write_bytes"] / questions),
        "bytes_per_question": round(
            (stored["checkpoint_bytes"] + stored["write_bytes"]) / questions
        ),
        "growth_per_question": round(growth / questions),
    }


def pg_available() -> str | None:
    """None when PG_URL accepts connections, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure means: skip the PostgreSQL parts
        return f"{type(exc).__name__}: {str(exc).strip()[:200]}"
    return None


def pg_schemas(action: str) -> None:
    """Create or drop the peers' schemas."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for schema in PEER_SCHEMAS.values():
            if action == "create":
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            else:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# ---- ours ------------------------------------------------------------------------------------
async def our_question(runner: Any, answer: str, session_id: str) -> Sample:
    """Stream one question; time it and check the outcome."""
    from graphs.turns import Turn

    before = CLOCKS.snapshot()
    first = None
    events = []
    started = time.perf_counter()
    async for event in runner.stream(Turn(QUESTION, session_id=session_id, db="sample")):
        if first is None:
            first = time.perf_counter() - started
        events.append(event)
    wall = time.perf_counter() - started
    assert first is not None
    check_ours(events, answer)
    steps = dict.fromkeys(OUR_TOOL_STEPS, 0.0)
    agent = 0.0
    for event in events:
        data = event.data
        if event.event == "step" and data.get("status") == "end":
            elapsed = float(data.get("elapsed_ms") or 0.0) / 1000
            if data["name"] in steps:
                steps[data["name"]] += elapsed
            elif data["name"] == "agent":
                agent += elapsed
    tool, model, schemas = (
        sum(steps.values()),
        delta(before, "model"),
        delta(before, "tool_schemas"),
    )
    return Sample(
        wall=wall,
        first=first,
        tool=tool,
        model=model,
        strict_tool=delta(before, "tool"),
        breakdown={
            **steps,
            "model": model,
            "tool_schemas()": schemas,
            "rest of agent steps": agent - model - schemas,
            "first event": first,
            "rest": wall - tool - agent - first,
            "(serialize)": delta(before, "serialize"),
            "(catalog)": delta(before, "catalog"),
        },
    )


def check_ours(events: list[Any], answer: str) -> None:
    """The question was answered with the run_sql table and a chart, in 3 tool calls."""
    kinds = [e.event for e in events]
    done = events[-1].data
    tools = [
        e.data["name"]
        for e in events
        if e.event == "step" and e.data.get("status") == "end" and e.data["name"] != "agent"
    ]
    if not (
        done.get("status") == "answered"
        and done.get("answer") == answer
        and "chart" in kinds
        and "table" in kinds
        and "error" not in kinds
        and tools == ["retrieve", "semantic_search", "run_sql", "build_chart"]
    ):
        raise RuntimeError(f"our question went wrong: {kinds} {done}")


@contextlib.asynccontextmanager
async def our_runner(bench: Bench, mode: str, work: Path) -> AsyncIterator[Any]:
    """Our TurnRunner for a checkpointer mode."""
    from agents.context import Services
    from graphs.text_to_sql import build_graph
    from graphs.turns import TurnRunner
    from memory.page_cache import InMemoryResults
    from server.agent_runtime import open_runner

    model = our_model(bench.answer)
    if mode == "none":
        yield TurnRunner(
            services=Services(bench.resources, InMemoryResults()),
            graph=build_graph(),
            model_factory=lambda spec: model,
        )
        return
    url = f"sqlite:///{sqlite_path(work, 'ours')}" if mode == "sqlite" else PG_URL
    async with open_runner(
        bench.resources, model_factory=lambda spec: model, checkpoint_url=url
    ) as runner:
        time_saver(runner.graph.checkpointer)
        time_catalog(runner)
        yield runner


# ---- the peer --------------------------------------------------------------------------------
def peer_tools(db_path: Path, model: ScriptedChatModel) -> list[Any]:
    """SQLDatabaseToolkit's tools on the sample file, their _run timed under `tool`."""
    from langchain_community.agent_toolkits import SQLDatabaseToolkit
    from langchain_community.utilities import SQLDatabase

    toolkit = SQLDatabaseToolkit(db=SQLDatabase.from_uri(f"sqlite:///{db_path}"), llm=model)
    tools = toolkit.get_tools()
    for tool in tools:
        object.__setattr__(tool, "_run", CLOCKS.wrap("tool", tool._run))
    return tools


def peer_input() -> dict[str, Any]:
    """The question as the agent takes it."""
    return {"messages": [{"role": "user", "content": QUESTION}]}


def check_peer(chunks: list[Any], answer: str) -> None:
    """3 successful tool calls, then the scripted answer."""
    from langchain_core.messages import ToolMessage

    tool_messages = [
        m
        for mode, chunk in chunks
        if mode == "updates"
        for update in chunk.values()
        for m in (update or {}).get("messages", [])
        if isinstance(m, ToolMessage)
    ]
    last = chunks[-1][1]
    final = (last.get("model") or {}).get("messages", [None])[-1]
    if (
        len(tool_messages) != 3
        or any(m.status != "success" for m in tool_messages)
        or "Consumer" not in str(tool_messages[-1].content)
        or getattr(final, "content", None) != answer
    ):
        raise RuntimeError(f"peer question went wrong: {tool_messages} {last}")


def peer_sample(
    before: dict[str, float], chunks: list[Any], first: float, wall: float, answer: str
) -> Sample:
    """One peer question's Sample."""
    check_peer(chunks, answer)
    tool, model = delta(before, "tool"), delta(before, "model")
    serialize = delta(before, "serialize")
    return Sample(
        wall,
        first,
        tool,
        model,
        tool,
        breakdown={
            "tool": tool,
            "model": model,
            "first event": first,
            "rest": wall - tool - model - first,
            "(serialize)": serialize,
        },
    )


async def peer_question(agent: Any, answer: str, thread: str) -> Sample:
    """agent.astream(...) of one question."""
    config = {"configurable": {"thread_id": thread}}
    chunks: list[Any] = []
    first = None
    before = CLOCKS.snapshot()
    started = time.perf_counter()
    async for chunk in agent.astream(peer_input(), config, stream_mode=["updates", "messages"]):
        if first is None:
            first = time.perf_counter() - started
        chunks.append(chunk)
    wall = time.perf_counter() - started
    return peer_sample(before, chunks, first or 0.0, wall, answer)


def peer_sync_question(agent: Any, answer: str, thread: str) -> Sample:
    """agent.stream(...) of one question (blocks the loop: nothing else runs meanwhile)."""
    config = {"configurable": {"thread_id": thread}}
    chunks: list[Any] = []
    first = None
    before = CLOCKS.snapshot()
    started = time.perf_counter()
    for chunk in agent.stream(peer_input(), config, stream_mode=["updates", "messages"]):
        if first is None:
            first = time.perf_counter() - started
        chunks.append(chunk)
    wall = time.perf_counter() - started
    return peer_sample(before, chunks, first or 0.0, wall, answer)


@contextlib.asynccontextmanager
async def peer_savers(mode: str, work: Path) -> AsyncIterator[tuple[Any, Any]]:
    """(async saver, sync saver) for a mode: none, langgraph's SQLite or PostgreSQL savers."""
    if mode == "none":
        yield None, None
        return
    if mode == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(str(sqlite_path(work, "peer"))) as saver:
            await saver.setup()
            path = sqlite_path(work, "peer (sync)")
            with contextlib.closing(sqlite3.connect(path, check_same_thread=False)) as conn:
                sync_saver = SqliteSaver(conn)
                sync_saver.setup()
                yield time_saver(saver), time_saver(sync_saver)
        return
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(pg_url(PEER_SCHEMAS["peer"])) as saver:
        await saver.setup()
        with PostgresSaver.from_conn_string(pg_url(PEER_SCHEMAS["peer (sync)"])) as sync_saver:
            sync_saver.setup()
            yield time_saver(saver), time_saver(sync_saver)


# ---- one mode, interleaved -------------------------------------------------------------------
@dataclass
class Side:
    """One agent in a mode: how to ask, what it measured, which threads it wrote."""

    ask: Callable[[str], Awaitable[Sample]]
    samples: list[Sample] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)
    warm: list[str] = field(default_factory=list)


async def run_mode(
    bench: Bench, mode: str, work: Path, questions: int, warmup: int
) -> dict[str, dict[str, Any]]:
    """Ours, the peer and the sync peer in one checkpointer mode, questions interleaved."""
    from langchain.agents import create_agent

    answer = bench.answer
    model = peer_model(answer)
    tools = peer_tools(bench.db_path, model)
    async with our_runner(bench, mode, work) as runner, peer_savers(mode, work) as savers:
        peer = create_agent(model, tools=tools, checkpointer=savers[0])
        peer_sync = create_agent(model, tools=tools, checkpointer=savers[1])

        async def sync_ask(thread: str) -> Sample:
            return peer_sync_question(peer_sync, answer, thread)

        sides = {
            "ours": Side(lambda s: our_question(runner, answer, s)),
            "peer": Side(lambda t: peer_question(peer, answer, t)),
            "peer (sync)": Side(sync_ask),
        }
        try:
            return await interleave(sides, mode, work, questions, warmup)
        finally:
            if mode == "postgres":  # the peers' schemas are dropped; ours is the real one
                await forget_ours(runner, sides["ours"].warm + sides["ours"].threads)


async def interleave(
    sides: dict[str, Side], mode: str, work: Path, questions: int, warmup: int
) -> dict[str, dict[str, Any]]:
    """Warm each side up, then ask `questions` per side in rotating order; summarize."""
    for side in sides.values():
        for _ in range(warmup):
            side.warm.append(f"warm-{uuid.uuid4().hex}")
            await side.ask(side.warm[-1])
    sizes0 = storage_sizes(mode, work)
    order = list(sides.values())
    for i in range(questions):
        for side in order[i % 3 :] + order[: i % 3]:
            side.threads.append(f"bench-{uuid.uuid4().hex}")
            side.samples.append(await side.ask(side.threads[-1]))
    sizes1 = storage_sizes(mode, work)
    out = {name: summarize(side.samples) for name, side in sides.items()}
    if mode == "none":
        return out
    for name, side in sides.items():
        stored = thread_bytes(mode, work, name, side.threads)
        out[name]["checkpoint"] = per_question(stored, questions, sizes1[name] - sizes0[name])
    if mode == "sqlite":
        out["ours"]["checkpoint"]["sessions_file_growth_per_question"] = round(
            (sizes1["sessions"] - sizes0["sessions"]) / questions
        )
        for name in ("ours", "peer"):
            out[name]["bytes_by_channel"] = sqlite_bytes_by_channel(
                sqlite_path(work, name), sides[name].threads[-1]
            )
    return out


def sqlite_path(work: Path, side: str) -> Path:
    """The SQLite checkpoint file of a side."""
    name = {"ours": "ours", "peer": "peer", "peer (sync)": "peer_sync"}[side]
    return work / f"{name}.sqlite"


def storage_sizes(mode: str, work: Path) -> dict[str, int]:
    """Bytes on disk per side (SQLite files + WAL, or PostgreSQL relations)."""
    if mode == "sqlite":
        sizes = {s: sqlite_files_size(sqlite_path(work, s)) for s in SIDES}
        return {**sizes, "sessions": sqlite_files_size(work / "data" / "sessions.sqlite")}
    if mode == "postgres":
        return {"ours": pg_relation_bytes("public")} | {
            side: pg_relation_bytes(schema) for side, schema in PEER_SCHEMAS.items()
        }
    return {}


def thread_bytes(mode: str, work: Path, side: str, threads: list[str]) -> dict[str, int]:
    """Stored bytes of a side's threads."""
    if mode == "sqlite":
        return sqlite_thread_bytes(sqlite_path(work, side), threads)
    return pg_thread_bytes(PEER_SCHEMAS.get(side, "public"), threads)


async def forget_ours(runner: Any, session_ids: list[str]) -> None:
    """Delete our benchmark sessions and threads from the PostgreSQL database."""
    from memory.checkpointer import delete_thread

    for session_id in session_ids:
        await delete_thread(runner.graph.checkpointer, session_id)
        await asyncio.to_thread(runner.sessions.delete, session_id)


def settings(data_dir: Path) -> Any:
    """Settings on a fresh data dir: the bundled sample, builtin embedder, local index."""
    from server.settings import Settings

    return Settings(
        data_dir=data_dir,
        databases={},
        database_url=None,
        default_database=None,
        embedding="builtin",
        chroma_url=None,
        checkpoint_url=None,
    )


@dataclass
class Bench:
    """The shared resources, the sample database's file and the scripted answer."""

    resources: Any
    db_path: Path
    answer: str


def open_bench(data_dir: Path) -> Bench:
    """build_resources on data_dir (the bundled sample is generated there)."""
    from server.resources import build_resources

    resources = build_resources(settings(data_dir))
    db_path = Path(resources.database("sample").config.url[len("sqlite:///") :])
    return Bench(resources, db_path, sample_answer(db_path))


async def run_all(
    work: Path, questions: int, warmup: int, with_pg: bool
) -> tuple[dict[str, dict[str, Any]], float]:
    """Every mode; and the first question's time (it builds the knowledge index)."""
    bench = open_bench(work / "data")
    time_our_code()
    try:
        async with our_runner(bench, "none", work) as runner:
            started = time.perf_counter()
            await our_question(runner, bench.answer, "first")
            cold = time.perf_counter() - started
        modes = {}
        for mode in ("none", "sqlite", "postgres") if with_pg else ("none", "sqlite"):
            modes[mode] = await run_mode(bench, mode, work, questions, warmup)
    finally:
        bench.resources.close()
    return modes, cold


# ---- memory: 100 concurrent sessions -----------------------------------------------------------
MEMORY_CASES = ("ours-memory", "ours-sqlite", "peer-memory")


def memory_case(kind: str, work: Path, sessions: int) -> dict[str, Any]:
    """Peak RSS of `sessions` concurrent questions, each its own session (fresh process)."""
    return asyncio.run(_memory_case(kind, work, sessions))


@contextlib.asynccontextmanager
async def _memory_asker(kind: str, work: Path) -> AsyncIterator[Callable[[str], Awaitable[Any]]]:
    bench = open_bench(work / "data")
    try:
        if kind == "peer-memory":
            from langchain.agents import create_agent
            from langgraph.checkpoint.memory import InMemorySaver

            model = peer_model(bench.answer)
            tools = peer_tools(bench.db_path, model)
            agent = create_agent(model, tools=tools, checkpointer=InMemorySaver())
            yield lambda t: peer_question(agent, bench.answer, t)
            return
        from server.agent_runtime import open_runner

        model = our_model(bench.answer)
        url = "memory" if kind == "ours-memory" else f"sqlite:///{work / 'memory_case.sqlite'}"
        async with open_runner(
            bench.resources, model_factory=lambda spec: model, checkpoint_url=url
        ) as runner:
            yield lambda s: our_question(runner, bench.answer, s)
    finally:
        bench.resources.close()


async def _memory_case(kind: str, work: Path, sessions: int) -> dict[str, Any]:
    async with _memory_asker(kind, work) as ask:
        for _ in range(3):
            await ask(f"warm-{uuid.uuid4().hex}")
        gc.collect()
        before_kb = _proc_status_kb("VmRSS") or 0
        ru_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hwm_reset = _reset_peak_rss()
        started = time.perf_counter()
        await asyncio.gather(*(ask(f"conc-{uuid.uuid4().hex}") for _ in range(sessions)))
        elapsed = time.perf_counter() - started
        ru_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        after_kb = _proc_status_kb("VmRSS") or 0
        if hwm_reset:
            peak_delta, method = ((_proc_status_kb("VmHWM") or 0) - before_kb) / 1024, "VmHWM"
        else:  # ru_maxrss is the lifetime peak: the delta is a lower bound
            peak_delta, method = (ru_after - ru_before) / 1024, "ru_maxrss delta"
    return {
        "case": kind,
        "sessions": sessions,
        "rss_before_mb": round(before_kb / 1024, 1),
        "peak_delta_mb": round(peak_delta, 1),
        "retained_delta_mb": round((after_kb - before_kb) / 1024, 1),
        "batch_s": round(elapsed, 2),
        "method": method,
    }


def memory_part(work: Path, sessions: int) -> list[dict[str, Any]]:
    """Each memory case in its own process."""
    rows = []
    for kind in MEMORY_CASES:
        argv = [sys.executable, __file__, "--memory-case", kind, "--work", str(work)]
        argv += ["--sessions", str(sessions)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines or not lines[-1].startswith("{"):
            raise RuntimeError(f"memory case {kind} failed: {done.stderr[-3000:]}")
        rows.append(json.loads(lines[-1]))
    return rows


# ---- report ------------------------------------------------------------------------------------
def ratio(ours: float | None, peer: float | None) -> float | None:
    """ours / peer, or None when either is missing or the peer's is 0."""
    if ours is None or peer is None or peer <= 0:
        return None
    return round(ours / peer, 3)


def compare(modes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per mode: framework p50 ratios (vs the peer, and vs the sync peer), checkpoint bytes."""
    out = {}
    for mode, sides in modes.items():
        ours, peer, sync = sides["ours"], sides["peer"], sides["peer (sync)"]
        row = {
            "framework_p50_ratio": ratio(ours["framework"]["p50_ms"], peer["framework"]["p50_ms"]),
            "framework_strict_p50_ratio": ratio(
                ours["framework_strict"]["p50_ms"], peer["framework"]["p50_ms"]
            ),
            "framework_p50_ratio_vs_sync": ratio(
                ours["framework"]["p50_ms"], sync["framework"]["p50_ms"]
            ),
        }
        if "checkpoint" in ours:
            row["checkpoint_bytes_ratio"] = ratio(
                ours["checkpoint"]["bytes_per_question"], peer["checkpoint"]["bytes_per_question"]
            )
        out[mode] = row
    return out


def verdicts(modes: dict[str, dict[str, Any]], ratios: dict[str, Any]) -> dict[str, Any]:
    """Each target: its figure, the limit, met or not."""
    out: dict[str, Any] = {}

    def target(key: str, value: float | None, limit: float, strict: bool = False) -> None:
        ok = value is not None and (value < limit if strict else value <= limit)
        out[key] = {"value": value, "limit": limit, "met": ok}

    for mode, row in ratios.items():
        target(f"{mode}_framework_p50_ratio", row["framework_p50_ratio"], TARGET_RATIO)
    for mode, row in ratios.items():
        if "checkpoint_bytes_ratio" in row:
            target(f"{mode}_checkpoint_bytes_ratio", row["checkpoint_bytes_ratio"], 1.0)
    for mode, sides in modes.items():
        value = sides["ours"]["first_event"]["p50_ms"]
        target(f"{mode}_first_event_p50_ms", value, TARGET_FIRST_EVENT_MS, strict=True)
    return out


def pair(r: dict[str, float]) -> str:
    """'p50 / p90'."""
    return f"{r['p50_ms']:.2f} / {r['p90_ms']:.2f}"


def print_report(
    modes: dict[str, dict[str, Any]],
    ratios: dict[str, dict[str, Any]],
    memory: list[dict[str, Any]],
    met: dict[str, Any],
    cold_s: float,
    questions: int,
) -> None:
    """The human tables."""
    print(f"per question, {questions} questions per row after warm-up, interleaved; ms p50 / p90")
    keys = ("wall", "tool", "model", "framework", "framework_strict", "first_event")
    print_table(
        ["checkpointer", "agent", "wall", "tool", "model", "framework", "fw strict", "1st event"],
        [
            [mode, side, *(pair(r[k]) for k in keys)]
            for mode, sides in modes.items()
            for side, r in sides.items()
        ],
    )
    print(
        f"(our first question, building the knowledge index: {cold_s:.2f} s. fw strict: tool = "
        "the tool functions' own time, excluding thread hops, events and result handling)"
    )

    print("\ncheckpoint storage per question (each question a new thread; bytes)")
    rows = []
    for mode, sides in modes.items():
        for side, r in sides.items():
            c = r.get("checkpoint")
            if c:
                rows.append(
                    [
                        mode,
                        side,
                        c["checkpoints_per_question"],
                        c["writes_per_question"],
                        c["checkpoint_bytes_per_question"],
                        c["write_bytes_per_question"],
                        c["bytes_per_question"],
                        c["growth_per_question"],
                        c.get("sessions_file_growth_per_question"),
                    ]
                )
    print_table(
        [
            "checkpointer",
            "agent",
            "checkpoints",
            "writes",
            "checkpoint B",
            "writes B",
            "total B",
            "file/rel growth B",
            "sessions.sqlite B",
        ],
        rows,
    )
    if "sqlite" in modes:
        print("\nstored bytes of one question by channel (SQLite; top 8)")
        for side in ("ours", "peer"):
            parts = list(modes["sqlite"][side].get("bytes_by_channel", {}).items())[:8]
            print(f"  {side}: " + ", ".join(f"{k} {v:,}" for k, v in parts))

    print(
        "\nwhere our time goes, p50 per question (ms). Tool steps, model, tool_schemas() (in "
        "call_model), the rest of the agent steps,\nthe first event (session catalog), the rest "
        "(graph steps, checkpoint writes, streaming, events); parenthesised: part of\nthe above "
        "(serialize = checkpointer's serde.dumps_typed; catalog = session catalog + result store)"
    )
    names = list(next(iter(modes.values()))["ours"]["breakdown_p50_ms"])
    print_table(
        ["checkpointer", *names],
        [[mode, *s["ours"]["breakdown_p50_ms"].values()] for mode, s in modes.items()],
    )
    print("\nwhere the peer's time goes, p50 per question (ms)")
    names = list(next(iter(modes.values()))["peer"]["breakdown_p50_ms"])
    print_table(
        ["checkpointer", "agent", *names],
        [
            [mode, side, *s[side]["breakdown_p50_ms"].values()]
            for mode, s in modes.items()
            for side in ("peer", "peer (sync)")
        ],
    )

    print("\nours / peer (peer = astream, like for like; vs sync = the stream() peer)")
    print_table(
        ["mode", "framework p50", "fw strict p50", "framework p50 vs sync", "checkpoint bytes"],
        [
            [
                mode,
                r["framework_p50_ratio"],
                r["framework_strict_p50_ratio"],
                r["framework_p50_ratio_vs_sync"],
                r.get("checkpoint_bytes_ratio"),
            ]
            for mode, r in ratios.items()
        ],
    )
    print(f"(the product owner's peer reference: {PEER_REFERENCE})")

    if memory:
        print(f"\npeak memory, {memory[0]['sessions']} concurrent sessions (fresh process each)")
        print_table(
            ["case", "RSS before MB", "peak delta MB", "retained MB", "batch s", "method"],
            [
                [
                    m["case"],
                    m["rss_before_mb"],
                    m["peak_delta_mb"],
                    m["retained_delta_mb"],
                    m["batch_s"],
                    m["method"],
                ]
                for m in memory
            ],
        )
    print("\ntargets (ratios: ours / peer, the astream peer)")
    for name, t in met.items():
        sign = "<" if name.endswith("_ms") else "<="
        verdict = "met" if t["met"] else "MISSED"
        print(f"  {name} = {t['value']} {sign} {t['limit']:g}: {verdict}")


def main() -> None:
    """Run everything and print the tables and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=QUESTIONS, help="Measured per mode.")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="Unmeasured, per agent.")
    parser.add_argument("--sessions", type=int, default=SESSIONS, help="Concurrent sessions.")
    parser.add_argument("--skip-pg", action="store_true", help="No PostgreSQL mode.")
    parser.add_argument("--skip-memory", action="store_true", help="No concurrent-memory part.")
    parser.add_argument("--memory-case", choices=MEMORY_CASES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_case:
        print(json.dumps(memory_case(args.memory_case, args.work, args.sessions)))
        return
    why_not = "--skip-pg given" if args.skip_pg else pg_available()
    with_pg = why_not is None
    if not with_pg:
        print(f"PostgreSQL mode skipped: {why_not}")
    with tempfile.TemporaryDirectory(prefix="sqlsage-agent-bench-") as tmp:
        work = Path(tmp)
        try:
            if with_pg:
                pg_schemas("create")
            modes, cold = asyncio.run(run_all(work, args.questions, args.warmup, with_pg))
        finally:
            if with_pg:
                pg_schemas("drop")
        memory = [] if args.skip_memory else memory_part(work, args.sessions)
    ratios = compare(modes)
    met = verdicts(modes, ratios)
    print_report(modes, ratios, memory, met, cold, args.questions)
    emit_result(
        {
            "benchmark": "agent_overhead",
            "questions": args.questions,
            "warmup": args.warmup,
            "postgresql": with_pg,
            "peer_tools_called": ["sql_db_list_tables", "sql_db_schema", "sql_db_query"],
            "modes": modes,
            "ratios": ratios,
            "memory": memory,
            "first_question_s": round(cold, 3),
            "targets": met,
        }
    )


if __name__ == "__main__":
    main()
