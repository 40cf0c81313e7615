"""Timing run_sql against raw execution: cases, alternating repetitions, summaries, breakdown."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import GoldQuery, median, ms_summary, percentile, timed

from tools.databases import Database
from tools.run_sql import execute_read_only, run_sql
from tools.validate_sql import validate_for

REPEATS = 5
HEAVY_MS = 20.0
# Heavier hand-written queries (20-500 ms raw), SQLite text, by database file under the data
# directory; the world_1 ones are transpiled for PostgreSQL too.
HEAVY: dict[str, tuple[str, ...]] = {
    "spider_dev/database/world_1": (
        "SELECT a.CountryCode, COUNT(*) FROM city AS a JOIN city AS b "
        "ON a.CountryCode = b.CountryCode GROUP BY a.CountryCode",
        "SELECT a.CountryCode, COUNT(*), AVG(b.Population) FROM city AS a JOIN city AS b "
        "ON a.CountryCode = b.CountryCode AND a.Population < b.Population "
        "GROUP BY a.CountryCode ORDER BY 2 DESC",
        "SELECT co.Continent, COUNT(*), SUM(ci.Population) FROM city AS ci "
        "CROSS JOIN country AS co WHERE ci.Population > co.Population / 100 "
        "GROUP BY co.Continent",
        "SELECT a.District, COUNT(DISTINCT b.Name) FROM city AS a JOIN city AS b "
        "ON a.CountryCode = b.CountryCode AND a.ID <> b.ID GROUP BY a.District",
    ),
    "bird_minidev/dev_databases/toxicology": (
        "SELECT a1.element, a2.element, COUNT(*) FROM connected AS c "
        "JOIN atom AS a1 ON a1.atom_id = c.atom_id JOIN atom AS a2 ON a2.atom_id = c.atom_id2 "
        "GROUP BY a1.element, a2.element",
        "SELECT a1.element, COUNT(*) FROM atom AS a1 JOIN atom AS a2 "
        "ON a1.molecule_id = a2.molecule_id GROUP BY a1.element",
    ),
    "bird_minidev/dev_databases/student_club": (
        "SELECT state, COUNT(*), COUNT(DISTINCT city), COUNT(DISTINCT county) FROM zip_code "
        "GROUP BY state ORDER BY 2 DESC",
        "SELECT z.state, COUNT(*) FROM zip_code AS z JOIN zip_code AS y "
        "ON z.city = y.city AND z.state = y.state GROUP BY z.state",
    ),
}


def heavy_queries(data: Path) -> list[GoldQuery]:
    """The heavier queries whose SQLite file is present."""
    found = []
    for folder, queries in HEAVY.items():
        db_id = folder.rsplit("/", 1)[-1]
        path = data / folder / f"{db_id}.sqlite"
        if path.is_file():
            found += [GoldQuery("heavy", db_id, sql, path) for sql in queries]
    return found


@dataclass
class Case:
    """A query to compare: its label and the two ways to run it (each returns a row count)."""

    label: str
    raw: Callable[[], int]
    run: Callable[[], int]


@dataclass
class Pair:
    """One query's raw and run_sql times (seconds, median and min of REPEATS) and rows."""

    label: str
    rows: int
    raw: float
    run: float
    raw_min: float
    run_min: float

    @property
    def overhead(self) -> float:
        """run_sql median minus raw median, in seconds."""
        return self.run - self.raw


def compare(cases: Sequence[Case]) -> tuple[list[Pair], list[str]]:
    """Warm each case on both sides, then time REPEATS alternating runs; problems listed."""
    pairs: list[Pair] = []
    problems: list[str] = []
    for case in cases:
        try:
            raw_rows, run_rows = case.raw(), case.run()
        except Exception as exc:  # any driver's error, or a rejection: report it, go on
            problems.append(f"{case.label}: {str(exc)[:160]}")
            continue
        if raw_rows != run_rows:
            problems.append(f"{case.label}: raw {raw_rows} rows, run_sql {run_rows} rows")
        raw_times, run_times = [], []
        for _ in range(REPEATS):
            raw_times.append(timed(case.raw)[1])
            run_times.append(timed(case.run)[1])
        pairs.append(
            Pair(
                case.label,
                raw_rows,
                median(raw_times),
                median(run_times),
                min(raw_times),
                min(run_times),
            )
        )
    return pairs, problems


def summarize(pairs: Sequence[Pair], problems: Sequence[str]) -> dict[str, Any]:
    """Percentiles of raw, run_sql and overhead, plus the overhead in % on heavy queries."""
    heavy = [p for p in pairs if p.raw * 1000 > HEAVY_MS]
    pct = [p.overhead / p.raw * 100 for p in heavy]
    return {
        "queries": len(pairs),
        "problems": len(problems),
        "problem_examples": list(problems[:5]),
        "raw_p50_ms": round(median([p.raw for p in pairs]) * 1000, 3),
        "run_sql_p50_ms": round(median([p.run for p in pairs]) * 1000, 3),
        "overhead": ms_summary([p.overhead for p in pairs], (50, 90, 99)),
        "heavy_count": len(heavy),
        "heavy_overhead_pct_p50": round(percentile(pct, 50), 2),
        "heavy_overhead_pct_max": round(max(pct), 2) if pct else None,
        "heavy": [
            {
                "label": p.label,
                "rows": p.rows,
                "raw_ms": round(p.raw * 1000, 2),
                "run_sql_ms": round(p.run * 1000, 2),
                "overhead_pct": round(p.overhead / p.raw * 100, 2),
                "overhead_pct_of_min": round((p.run_min - p.raw_min) / p.raw_min * 100, 2),
            }
            for p in heavy
        ],
    }


def breakdown(
    database: Database, sql: str, raw: Callable[[], Any], calls: int = 300
) -> dict[str, float]:
    """Median ms of each step of run_sql on one small query, next to the raw execution."""
    cap = database.config.max_rows
    validation = validate_for(database, sql)
    limited = validation.sql_with_limit(cap + 1)
    steps: dict[str, Callable[[], Any]] = {
        "raw": raw,
        "validate_for": lambda: validate_for(database, sql),
        "sql_with_limit": lambda: validation.sql_with_limit(cap + 1),
        "execute_read_only": lambda: execute_read_only(
            database, limited, max_rows=cap, timeout_s=30
        ),
        "run_sql": lambda: run_sql(database, sql),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        step()
    for _ in range(calls):  # interleaved, so background noise hits every step alike
        for name, step in steps.items():
            times[name].append(timed(step)[1])
    return {name: round(median(t) * 1000, 4) for name, t in times.items()}
