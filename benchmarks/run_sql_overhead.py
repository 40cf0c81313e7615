"""run_sql overhead over raw DB-API execution, on SQLite and PostgreSQL, and its peak memory.

(a) SQLite: every Spider dev gold query plus a few heavier ones (20-500 ms raw) on Spider/BIRD
    files: raw sqlite3 execute+fetchall on an open connection vs run_sql (pooled read-only
    engine, validation included). Each side runs REPEATS times, alternating; a query's time is
    its median, and overhead = run_sql median - raw median.
(b) PostgreSQL: a few Spider databases copied into `sqlsage_bench` (one schema each, kept for
    the next run; --drop-pg removes it), their gold queries transpiled by sqlglot, those that
    run on PostgreSQL compared the same way (raw: psycopg, autocommit, open connection).
(c) Memory: run_sql on a query producing 1,000,000 rows, capped at 1,000, each case in a fresh
    process; execute_read_only without the injected LIMIT shown beside it.

    .venv/bin/python benchmarks/run_sql_overhead.py [--skip-pg] [--drop-pg]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _pg_spider as pg
from _common import (
    Databases,
    emit_result,
    measure_peak,
    median,
    print_table,
    require_shared_data,
    spider_queries,
    sqlite_database,
    timed,
)
from _overhead import HEAVY_MS, REPEATS, Case, breakdown, compare, heavy_queries, summarize

from tools.databases import Database, DatabaseConfig
from tools.run_sql import execute_read_only, run_sql

CAP = 100_000  # above every result here, so the injected LIMIT never cuts rows on either side
TARGET_OVERHEAD_P50_MS = 2.0
TARGET_HEAVY_PCT = 10.0
TARGET_MEMORY_MB = 100.0
PG_DBS = ("world_1", "car_1", "dog_kennels", "flight_2", "student_transcripts_tracking", "pets_1")
MEMORY_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) "
    "SELECT x, x * 2 FROM c"
)
MEMORY_CAP = 1000
MEMORY_CALLS = ("run_sql", "execute_read_only")
LOOKUP_SQL = "SELECT Name FROM country WHERE Continent = 'Europe' AND Population > 80000"


def world_1(data: Path) -> Path:
    """The Spider world_1 SQLite file."""
    return data / "spider_dev" / "database" / "world_1" / "world_1.sqlite"


# ---- (a) SQLite ------------------------------------------------------------------------------
def sqlite_part(data: Path) -> dict[str, Any]:
    """Spider gold and heavy queries: raw sqlite3 on an open connection vs run_sql."""
    databases = Databases(max_rows=CAP)
    with contextlib.ExitStack() as stack:
        stack.callback(databases.close)
        conns: dict[Path, sqlite3.Connection] = {}
        cases = []
        for q in spider_queries(data) + heavy_queries(data):
            if q.db_path not in conns:
                conn = sqlite3.connect(f"file:{q.db_path}?mode=ro", uri=True)
                stack.callback(conn.close)
                conns[q.db_path] = conn

            def raw(conn: sqlite3.Connection = conns[q.db_path], sql: str = q.sql) -> int:
                return len(conn.execute(sql).fetchall())

            database = databases.get(q.db_path)

            def run(db: Database = database, sql: str = q.sql) -> int:
                return run_sql(db, sql).row_count

            cases.append(Case(f"{q.suite}/{q.db_id}: {q.sql[:60]}", raw, run))
        return summarize(*compare(cases))


# ---- (b) PostgreSQL --------------------------------------------------------------------------
def pg_paths(data: Path) -> dict[str, Path]:
    """The Spider SQLite files copied into PostgreSQL."""
    return {q.db_id: q.db_path for q in spider_queries(data) if q.db_id in PG_DBS}


def pg_database(schema: str | None, max_rows: int) -> Database:
    """A sqlsage Database on sqlsage_bench, exposing one schema."""
    schemas = (schema,) if schema else None
    name = schema or "bench"
    return Database(
        DatabaseConfig(name=name, url=pg.SQLSAGE_URL, schemas=schemas, max_rows=max_rows)
    )


def postgres_part(data: Path) -> dict[str, Any]:
    """Spider databases copied to PostgreSQL (already loaded): raw psycopg vs run_sql."""
    import psycopg

    paths = pg_paths(data)
    gold = [q for q in spider_queries(data) if q.db_id in PG_DBS]
    columns = {db_id: pg.column_names(path) for db_id, path in paths.items()}
    databases = {db_id: pg_database(db_id, CAP) for db_id in paths}
    skipped = {"transpile": 0, "postgres_refused": 0}
    cases = []
    with psycopg.connect(pg.BENCH_URL, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 10000")
        for q in gold + [q for q in heavy_queries(data) if q.db_id in PG_DBS]:
            try:
                sql = pg.to_postgres(q.sql, q.db_id, columns[q.db_id])
            except Exception:  # sqlglot raises several kinds; they are only counted
                skipped["transpile"] += 1
                continue
            try:
                conn.execute(sql).fetchall()
            except psycopg.Error:  # e.g. SQLite's loose GROUP BY or text = integer
                skipped["postgres_refused"] += 1
                continue

            def raw(sql: str = sql) -> int:
                return len(conn.execute(sql).fetchall())

            def run(db: Database = databases[q.db_id], sql: str = sql) -> int:
                return run_sql(db, sql).row_count

            cases.append(Case(f"{q.suite}/{q.db_id}: {q.sql[:60]}", raw, run))
        try:
            pairs, problems = compare(cases)
        finally:
            for database in databases.values():
                database.dispose()
    return {**summarize(pairs, problems), "gold_total": len(gold), "skipped": skipped}


# ---- (c) memory --------------------------------------------------------------------------
def memory_case(engine: str, how: str, data: Path) -> dict[str, Any]:
    """Peak memory of the first 1,000,000-row query in this process, then its time.

    run_sql injects LIMIT 1000 (+1); execute_read_only runs the SQL as it is, so only the
    driver's fetchmany caps the rows. Nothing big may run before in the same process: memory
    it freed would be reused and hide the peak from RSS."""
    if engine == "sqlite":
        database = sqlite_database(world_1(data), max_rows=MEMORY_CAP)
    else:
        database = pg_database(None, MEMORY_CAP)
    calls = {
        "run_sql": lambda: run_sql(database, MEMORY_SQL, max_rows=MEMORY_CAP),
        "execute_read_only": lambda: execute_read_only(
            database, MEMORY_SQL, max_rows=MEMORY_CAP, timeout_s=120
        ),
    }
    try:
        run_sql(database, "SELECT 1")  # engine, connection, imports: not the query's memory
        result, peak = measure_peak(calls[how])
        elapsed = median([timed(calls[how])[1] for _ in range(3)])
    finally:
        database.dispose()
    return {
        "engine": engine,
        "call": how,
        "rows": result.row_count,
        "truncated": result.truncated,
        "elapsed_ms": round(elapsed * 1000, 2),
        "tracemalloc_peak_mb": peak.tracemalloc_peak_mb,
        "rss_delta_mb": peak.rss_delta_mb,
        "rss_method": peak.rss_method,
    }


def memory_part(with_pg: bool) -> list[dict[str, Any]]:
    """Each memory case in its own process (see memory_case)."""
    rows = []
    for engine in ("sqlite", "postgresql") if with_pg else ("sqlite",):
        for how in MEMORY_CALLS:
            argv = [sys.executable, __file__, "--memory-case", engine, how]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
            lines = done.stdout.strip().splitlines()
            if done.returncode != 0 or not lines or not lines[-1].startswith("{"):
                raise RuntimeError(f"memory case {engine}/{how} failed: {done.stderr[-2000:]}")
            rows.append(json.loads(lines[-1]))
    return rows


# ---- where the time goes -----------------------------------------------------------------
def breakdowns(data: Path, with_pg: bool) -> dict[str, dict[str, float]]:
    """The step breakdown of one world_1 lookup on SQLite and PostgreSQL."""
    out = {}
    database = sqlite_database(world_1(data), max_rows=CAP)
    conn = sqlite3.connect(f"file:{world_1(data)}?mode=ro", uri=True)
    try:
        out["sqlite"] = breakdown(database, LOOKUP_SQL, lambda: conn.execute(LOOKUP_SQL).fetchall())
    finally:
        conn.close()
        database.dispose()
    if with_pg:
        import psycopg

        pg_sql = pg.to_postgres(LOOKUP_SQL, "world_1", pg.column_names(world_1(data)))
        database = pg_database("world_1", CAP)
        with psycopg.connect(pg.BENCH_URL, autocommit=True) as pg_conn:
            try:
                out["postgresql"] = breakdown(
                    database, pg_sql, lambda: pg_conn.execute(pg_sql).fetchall()
                )
            finally:
                database.dispose()
    return out


# ---- report --------------------------------------------------------------------------------
def print_report(
    parts: dict[str, dict[str, Any]],
    memory: list[dict[str, Any]],
    steps: dict[str, dict[str, float]],
) -> None:
    """The human tables."""
    print(f"(a)/(b) overhead = run_sql - raw, per query median of {REPEATS} (ms)")
    headers = ["engine", "queries", "raw p50", "run_sql p50", "ovh p50", "ovh p90", "ovh p99"]
    print_table(
        [*headers, "heavy n", "heavy ovh % p50", "heavy ovh % max"],
        [
            [
                name,
                r["queries"],
                r["raw_p50_ms"],
                r["run_sql_p50_ms"],
                *r["overhead"].values(),
                r["heavy_count"],
                r["heavy_overhead_pct_p50"],
                r["heavy_overhead_pct_max"],
            ]
            for name, r in parts.items()
        ],
    )
    print(f"\nqueries over {HEAVY_MS:g} ms raw (% of mins: the same from the fastest runs)")
    keys = ["rows", "raw_ms", "run_sql_ms", "overhead_pct", "overhead_pct_of_min"]
    print_table(
        ["engine", "query", "rows", "raw ms", "run_sql ms", "overhead %", "% of mins"],
        [
            [name, h["label"][:68]] + [h[k] for k in keys]
            for name, r in parts.items()
            for h in r["heavy"]
        ],
    )
    for name, r in parts.items():
        if r["problems"]:
            print(f"{name}: {r['problems']} queries failed or differed: {r['problem_examples']}")
    if "postgresql" in parts:
        r = parts["postgresql"]
        print(
            f"postgresql: {r['gold_total']} gold queries on {len(PG_DBS)} databases, skipped "
            f"{r['skipped']}; load {r['load']} in {r['load_s']} s"
        )
    print(f"\n(c) {MEMORY_SQL[:58]}... capped at {MEMORY_CAP:,} rows, fresh process each")
    keys = [
        "engine",
        "call",
        "rows",
        "truncated",
        "elapsed_ms",
        "tracemalloc_peak_mb",
        "rss_delta_mb",
    ]
    print_table(
        ["engine", "call", "rows", "truncated", "elapsed ms", "tracemalloc MB", "RSS delta MB"],
        [[m[k] for k in keys] for m in memory],
    )
    print("\nwhere the time goes: one world_1 lookup, median ms of 300 interleaved calls")
    names = list(next(iter(steps.values())))
    print_table(["engine", *names], [[engine, *s.values()] for engine, s in steps.items()])


def verdicts(parts: dict[str, dict[str, Any]], memory: list[dict[str, Any]]) -> dict[str, bool]:
    """Each target: met or not."""
    out = {}
    for name, r in parts.items():
        out[f"{name}_overhead_p50"] = r["overhead"]["p50_ms"] < TARGET_OVERHEAD_P50_MS
        if r["heavy_count"]:
            out[f"{name}_heavy_pct"] = r["heavy_overhead_pct_max"] < TARGET_HEAVY_PCT
    for m in memory:
        if m["call"] == "run_sql":
            worst = max(m["tracemalloc_peak_mb"], m["rss_delta_mb"] or 0)
            out[f"{m['engine']}_memory"] = worst < TARGET_MEMORY_MB
    return out


def main() -> None:
    """Run (c), (a), (b) and print the tables and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-pg", action="store_true", help="SQLite only.")
    parser.add_argument("--drop-pg", action="store_true", help="Drop sqlsage_bench at the end.")
    parser.add_argument(
        "--memory-case", nargs=2, metavar=("ENGINE", "CALL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    data = require_shared_data()
    if args.memory_case:
        engine, how = args.memory_case
        print(json.dumps(memory_case(engine, how, data)))
        return
    why_not = "--skip-pg given" if args.skip_pg else pg.unavailable()
    with_pg = why_not is None
    if not with_pg:
        print(f"PostgreSQL part skipped: {why_not}")
    try:
        if with_pg:
            started = time.perf_counter()
            load = {
                "load": pg.ensure_loaded(pg_paths(data)),
                "load_s": round(time.perf_counter() - started, 2),
            }
        memory = memory_part(with_pg)
        parts = {"sqlite": sqlite_part(data)}
        if with_pg:
            parts["postgresql"] = {**postgres_part(data), **load}
        steps = breakdowns(data, with_pg)
    finally:
        if with_pg and args.drop_pg:
            pg.drop_database()
    print_report(parts, memory, steps)
    met = verdicts(parts, memory)
    print(
        "\ntargets (overhead p50 < 2 ms, < 10 % over 20 ms raw, memory < 100 MB):",
        ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()),
    )
    emit_result(
        {
            "benchmark": "run_sql_overhead",
            "repeats": REPEATS,
            "postgresql": with_pg,
            "parts": parts,
            "memory": memory,
            "breakdown_ms": steps,
            "targets_met": met,
        }
    )


if __name__ == "__main__":
    main()
