"""Execution match: run gold and predicted SQL on a read-only SQLite database, compare the rows.

Rows are compared as tuples in column order; column names are ignored but column order is not,
so `SELECT name, total` and `SELECT total, name` do not match (as in Spider's execution match).
Row order matters only when the gold SQL ends in a top-level ORDER BY. Numbers compare by
value (3 equals 3.0) with a relative tolerance of 1e-6; text, blobs and NULL compare exactly.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from evals.datasets import EvalQuestion
from tools.readonly import open_sqlite_read_only

REL_TOL = 1e-6
ABS_TOL = 1e-9  # so 0.0 equals a float summed to -1e-12
DEFAULT_TIMEOUT_S = 5.0
MAX_ROWS = 100_000
_PROGRESS_STEPS = 10_000  # SQLite VM steps between deadline checks
_FETCH_BATCH = 1_000

Row = tuple[Any, ...]


@dataclass(frozen=True)
class MatchResult:
    """Whether the predicted SQL returned the gold rows; `reason` says why not."""

    match: bool
    reason: str | None = None


class _QueryFailed(Exception):
    pass


def execution_match(
    conn_or_path: sqlite3.Connection | Path | str,
    gold_sql: str,
    predicted_sql: str | None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_rows: int = MAX_ROWS,
) -> MatchResult:
    """Run both queries read-only (each within `timeout_s`) and compare their result rows."""
    if predicted_sql is None or not predicted_sql.strip():
        return MatchResult(False, "no predicted SQL")
    with _connection(conn_or_path) as conn:
        try:
            gold = _run(conn, gold_sql, timeout_s, max_rows)
        except _QueryFailed as error:
            return MatchResult(False, f"gold SQL failed: {error}")
        try:
            predicted = _run(conn, predicted_sql, timeout_s, max_rows)
        except _QueryFailed as error:
            return MatchResult(False, f"predicted SQL failed: {error}")
    return compare_rows(gold, predicted, ordered=has_top_level_order_by(gold_sql))


def compare_rows(gold: Sequence[Row], predicted: Sequence[Row], *, ordered: bool) -> MatchResult:
    """Compare two results as lists (`ordered`) or as multisets of rows."""
    gold_width = len(gold[0]) if gold else None
    predicted_width = len(predicted[0]) if predicted else None
    if gold_width is not None and predicted_width is not None and gold_width != predicted_width:
        return MatchResult(False, f"gold has {gold_width} columns, predicted has {predicted_width}")
    if len(gold) != len(predicted):
        return MatchResult(False, f"gold has {len(gold)} rows, predicted has {len(predicted)}")
    if not ordered:
        gold, predicted = sorted(gold, key=_row_key), sorted(predicted, key=_row_key)
    for index, (want, got) in enumerate(zip(gold, predicted, strict=True)):
        if not _same_row(want, got):
            where = f"row {index + 1} differs" if ordered else "rows differ"
            return MatchResult(False, f"{where}: gold {want!r}, predicted {got!r}")
    return MatchResult(True)


def has_top_level_order_by(sql: str) -> bool:
    """True when the statement's outermost query has an ORDER BY (not one inside a subquery)."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except SqlglotError:
        # Unparsable gold: assume order matters, the stricter reading.
        return "order by" in " ".join(sql.lower().split())
    return isinstance(tree, exp.Query) and tree.args.get("order") is not None


def summarize(results: Iterable[tuple[EvalQuestion, MatchResult]]) -> dict[str, Any]:
    """Counts and accuracy overall and per question shape ('unspecified' when it has none)."""
    n = matched = 0
    by_shape: dict[str, dict[str, Any]] = {}
    for question, result in results:
        shape = by_shape.setdefault(question.shape or "unspecified", {"n": 0, "matched": 0})
        n += 1
        shape["n"] += 1
        if result.match:
            matched += 1
            shape["matched"] += 1
    for counts in by_shape.values():
        counts["accuracy"] = counts["matched"] / counts["n"]
    return {
        "n": n,
        "matched": matched,
        "accuracy": matched / n if n else 0.0,
        "by_shape": dict(sorted(by_shape.items())),
    }


@contextlib.contextmanager
def _connection(conn_or_path: sqlite3.Connection | Path | str) -> Iterator[sqlite3.Connection]:
    if not isinstance(conn_or_path, sqlite3.Connection):
        with contextlib.closing(open_sqlite_read_only(str(conn_or_path))) as own:
            yield own
        return
    # A caller's connection may be writable: refuse writes for the duration of the call.
    # (One from open_sqlite_read_only is query_only already, and its authorizer denies setting it.)
    if conn_or_path.execute("PRAGMA query_only").fetchone()[0]:
        yield conn_or_path
        return
    conn_or_path.execute("PRAGMA query_only = 1")
    try:
        yield conn_or_path
    finally:
        conn_or_path.execute("PRAGMA query_only = 0")


def _run(conn: sqlite3.Connection, sql: str, timeout_s: float, max_rows: int) -> list[Row]:
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_STEPS)
    try:
        cursor = conn.execute(sql)
        rows: list[Row] = []
        while batch := cursor.fetchmany(_FETCH_BATCH):
            rows.extend(batch)
            if len(rows) > max_rows:
                raise _QueryFailed(f"more than {max_rows} rows")
        return rows
    except (sqlite3.Error, sqlite3.Warning) as error:
        if time.monotonic() > deadline:
            raise _QueryFailed(f"timed out after {timeout_s:g} s") from error
        raise _QueryFailed(f"{type(error).__name__}: {error}") from error
    finally:
        conn.set_progress_handler(None, 0)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same_value(want: Any, got: Any) -> bool:
    if _is_number(want) and _is_number(got):
        if isinstance(want, int) and isinstance(got, int):
            return want == got
        return math.isclose(want, got, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return type(want) is type(got) and want == got


def _same_row(want: Row, got: Row) -> bool:
    return len(want) == len(got) and all(map(_same_value, want, got))


def _row_key(row: Row) -> tuple[tuple[int, Any], ...]:
    # Sorting puts rows that compare equal side by side; floats are keyed on 6 significant
    # digits so tolerance-equal values sort alike. Types rank first: values of different types
    # never compare with each other.
    return tuple(_value_key(value) for value in row)


def _value_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if _is_number(value):
        return (1, float(f"{value:.6g}") if isinstance(value, float) else value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, bytes):
        return (3, value)
    return (4, repr(value))
