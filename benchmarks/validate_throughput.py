"""validate_sql throughput on every Spider dev and BIRD mini-dev gold query, catalogs warm.

Each query goes through validate_for against its own database's catalog once untimed (which
reflects the tables it needs), then REPEATS timed passes; a query's time is its median pass.
A bare sqlglot.parse_one of the same text is timed the same way for reference.

    .venv/bin/python benchmarks/validate_throughput.py
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from _common import (
    Databases,
    GoldQuery,
    bird_queries,
    emit_result,
    median,
    ms_summary,
    print_table,
    require_shared_data,
    spider_queries,
)

from tools.validate_sql import ValidationResult, validate_for

REPEATS = 3
TARGET_P50_MS = 2.0


@dataclass
class Timing:
    """One query's median time over the timed passes and what validation said."""

    query: GoldQuery
    seconds: float
    valid: bool = True
    error: str = ""


def time_each(
    queries: Sequence[GoldQuery], call: Callable[[GoldQuery], object], repeats: int
) -> tuple[list[list[float]], float]:
    """Per-query durations over `repeats` passes (query order kept), and their total."""
    runs: list[list[float]] = [[] for _ in queries]
    total = 0.0
    for _ in range(repeats):
        for i, query in enumerate(queries):
            started = time.perf_counter()
            call(query)
            elapsed = time.perf_counter() - started
            runs[i].append(elapsed)
            total += elapsed
    return runs, total


def validate_all(
    queries: Sequence[GoldQuery], databases: Databases
) -> tuple[list[Timing], float, float]:
    """Warm each catalog with one pass (timed apart: it reflects), then time REPEATS passes."""
    started = time.perf_counter()
    outcomes: list[ValidationResult] = [
        validate_for(databases.get(q.db_path), q.sql) for q in queries
    ]
    cold = time.perf_counter() - started
    runs, total = time_each(
        queries, lambda q: validate_for(databases.get(q.db_path), q.sql), REPEATS
    )
    timings = []
    for query, seconds, outcome in zip(queries, runs, outcomes, strict=True):
        error = f"{outcome.errors[0].code}: {outcome.errors[0].message}" if outcome.errors else ""
        timings.append(Timing(query, median(seconds), outcome.valid, error))
    return timings, total, cold


def parse_all(queries: Sequence[GoldQuery]) -> tuple[list[float], float]:
    """Median time of a bare sqlglot.parse_one per query, and the total time of all passes."""
    for query in queries:
        sqlglot.parse_one(query.sql, read="sqlite")
    runs, total = time_each(queries, lambda q: sqlglot.parse_one(q.sql, read="sqlite"), REPEATS)
    return [median(r) for r in runs], total


def summary(seconds: Sequence[float], total: float, calls: int) -> dict[str, Any]:
    """Count, queries per second and percentiles (ms)."""
    return {
        "count": len(seconds),
        "queries_per_s": round(calls / total, 1) if total else 0.0,
        **ms_summary(seconds),
        "max_ms": round(max(seconds) * 1000, 3) if seconds else 0.0,
    }


def main() -> None:
    """Run the benchmark and print the table and the RESULT line."""
    data = require_shared_data()
    suites = {"spider": spider_queries(data), "bird": bird_queries(data)}
    databases = Databases()
    results: dict[str, dict[str, Any]] = {}
    rejected: list[Timing] = []
    try:
        all_timings: list[Timing] = []
        all_total = 0.0
        for name, queries in suites.items():
            timings, total, cold = validate_all(queries, databases)
            all_timings += timings
            all_total += total
            rejected += [t for t in timings if not t.valid]
            results[name] = {
                **summary([t.seconds for t in timings], total, len(timings) * REPEATS),
                "accepted": sum(t.valid for t in timings),
                "cold_pass_s": round(cold, 3),
            }
        results["all"] = {
            **summary([t.seconds for t in all_timings], all_total, len(all_timings) * REPEATS),
            "accepted": sum(t.valid for t in all_timings),
        }
        every = [q for queries in suites.values() for q in queries]
        parse_seconds, parse_total = parse_all(every)
        results["parse_one_all"] = summary(parse_seconds, parse_total, len(every) * REPEATS)
    finally:
        databases.close()

    print(f"validate_for over gold queries (catalog warm; median of {REPEATS} passes per query)")
    rows = []
    for name in ("spider", "bird", "all"):
        r = results[name]
        rows.append(
            [
                name,
                r["count"],
                r["accepted"],
                r["queries_per_s"],
                r["p50_ms"],
                r["p90_ms"],
                r["p99_ms"],
                r["max_ms"],
            ]
        )
    p = results["parse_one_all"]
    rows.append(
        [
            "parse_one only (all)",
            p["count"],
            None,
            p["queries_per_s"],
            p["p50_ms"],
            p["p90_ms"],
            p["p99_ms"],
            p["max_ms"],
        ]
    )
    print_table(
        ["suite", "count", "accepted", "queries/s", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows
    )
    p50 = float(results["all"]["p50_ms"])
    colds = ", ".join(f"{n} {results[n]['cold_pass_s']} s" for n in suites)
    print(f"first (untimed) pass, incl. engine creation and reflection: {colds}")
    verdict = "met" if p50 < TARGET_P50_MS else "MISSED"
    print(f"target p50 < {TARGET_P50_MS} ms: {verdict} ({p50:.3f} ms)")
    if rejected:
        print(
            f"rejected ({len(rejected)}):", dict(Counter(t.error.split(":")[0] for t in rejected))
        )
        for t in rejected[:5]:
            print(f"  {t.query.suite}/{t.query.db_id}: {t.error[:160]}")
    slowest = sorted((t for t in all_timings), key=lambda t: -t.seconds)[:3]
    print("slowest:")
    for t in slowest:
        print(f"  {t.seconds * 1000:.2f} ms  {t.query.suite}/{t.query.db_id}: {t.query.sql[:100]}")
    emit_result(
        {
            "benchmark": "validate_throughput",
            "repeats": REPEATS,
            "target_p50_ms": TARGET_P50_MS,
            "target_met": p50 < TARGET_P50_MS,
            "sqlglot": sqlglot.__version__,
            **results,
        }
    )


if __name__ == "__main__":
    main()
