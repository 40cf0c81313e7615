"""Execution match: row multisets vs lists, numeric tolerance, time limit, read-only execution."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.datasets import EvalQuestion
from evals.metrics import MatchResult, compare_rows, execution_match, summarize

RUNAWAY = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT COUNT(*) FROM r"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE t (k INTEGER, x REAL, label TEXT)")
        conn.executemany(
            "INSERT INTO t VALUES (?, ?, ?)",
            [(1, 0.5, "a"), (2, 1.25, "b"), (3, None, "c"), (3, 2.0, "c")],
        )
    return path


@pytest.fixture
def writable(tiny: Path) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(sqlite3.connect(tiny)) as conn:
        yield conn


def test_identical_and_equivalent_sql_match(sample_path: Path) -> None:
    gold = "SELECT COUNT(*) FROM customers WHERE country = 'France'"
    assert execution_match(sample_path, gold, gold) == MatchResult(True)
    assert execution_match(
        str(sample_path),
        gold,
        "select count(customer_id) as n from customers c where c.country='France'",
    ).match


def test_different_rows_do_not_match(sample_path: Path) -> None:
    result = execution_match(
        sample_path,
        "SELECT COUNT(*) FROM customers WHERE country = 'France'",
        "SELECT COUNT(*) FROM customers WHERE country = 'Germany'",
    )
    assert not result.match
    assert result.reason == "rows differ: gold (89,), predicted (167,)"


def test_column_names_are_ignored_but_column_order_counts(tiny: Path) -> None:
    gold = "SELECT k, label FROM t"
    assert execution_match(tiny, gold, "SELECT k AS id, label AS name FROM t").match
    swapped = execution_match(tiny, gold, "SELECT label, k FROM t")
    assert not swapped.match
    assert swapped.reason is not None and swapped.reason.startswith("rows differ")
    narrower = execution_match(tiny, gold, "SELECT k FROM t")
    assert narrower.reason == "gold has 2 columns, predicted has 1"


def test_row_order_matters_only_with_a_top_level_order_by(tiny: Path) -> None:
    assert execution_match(tiny, "SELECT k FROM t", "SELECT k FROM t ORDER BY k DESC").match
    assert execution_match(
        tiny, "SELECT k FROM (SELECT k FROM t ORDER BY k) ", "SELECT k FROM t ORDER BY k DESC"
    ).match
    result = execution_match(tiny, "SELECT k FROM t ORDER BY k", "SELECT k FROM t ORDER BY k DESC")
    assert not result.match
    assert result.reason == "row 1 differs: gold (1,), predicted (3,)"


def test_rows_compare_as_multisets(tiny: Path) -> None:
    result = execution_match(tiny, "SELECT k FROM t", "SELECT DISTINCT k FROM t")
    assert result.reason == "gold has 4 rows, predicted has 3"
    assert not compare_rows([(1,), (1,), (2,)], [(1,), (2,), (2,)], ordered=False).match
    assert compare_rows([], [], ordered=True).match


def test_numbers_compare_with_a_relative_tolerance(tiny: Path) -> None:
    assert execution_match(tiny, "SELECT 0.3", "SELECT 0.1 + 0.2").match
    assert execution_match(tiny, "SELECT 3", "SELECT 3.0").match
    assert execution_match(tiny, "SELECT 1234567.0", "SELECT 1234567.0 + 1e-3").match
    assert execution_match(tiny, "SELECT 0.0", "SELECT 1e-12").match
    assert not execution_match(tiny, "SELECT 1.0", "SELECT 1.001").match
    assert not execution_match(tiny, "SELECT 2.5", "SELECT ROUND(2.4567, 2)").match
    # Sorting keys floats on 6 significant digits, so tolerance-equal rows still pair up.
    assert execution_match(
        tiny, "SELECT x FROM t", "SELECT x * (1 + 1e-9) FROM t ORDER BY x DESC"
    ).match


def test_types_other_than_numbers_compare_exactly(tiny: Path) -> None:
    assert not execution_match(tiny, "SELECT 3", "SELECT '3'").match
    assert not execution_match(tiny, "SELECT 'a'", "SELECT 'A'").match
    assert execution_match(tiny, "SELECT x FROM t WHERE k = 3", "SELECT x FROM t WHERE k > 2").match
    assert not execution_match(tiny, "SELECT NULL", "SELECT 0").match


@pytest.mark.parametrize("predicted", [None, "", "   \n"])
def test_missing_prediction_is_a_miss(tiny: Path, predicted: str | None) -> None:
    assert execution_match(tiny, "SELECT 1", predicted) == MatchResult(False, "no predicted SQL")


def test_failing_sql_is_a_miss_with_the_error(tiny: Path) -> None:
    result = execution_match(tiny, "SELECT k FROM t", "SELECT nope FROM t")
    assert result.reason == "predicted SQL failed: OperationalError: no such column: nope"
    two = execution_match(tiny, "SELECT 1", "SELECT 1; SELECT 2")
    assert two.reason is not None and two.reason.startswith("predicted SQL failed")
    gold = execution_match(tiny, "SELECT nope FROM t", "SELECT k FROM t")
    assert gold.reason is not None and gold.reason.startswith("gold SQL failed")


def test_runaway_query_times_out_as_a_miss(tiny: Path) -> None:
    started = time.monotonic()
    result = execution_match(tiny, "SELECT 1", RUNAWAY, timeout_s=0.2)
    assert time.monotonic() - started < 5
    assert result == MatchResult(False, "predicted SQL failed: timed out after 0.2 s")


def test_huge_results_are_capped(tiny: Path) -> None:
    big = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r LIMIT 50) SELECT i FROM r"
    result = execution_match(tiny, "SELECT 1", big, max_rows=10)
    assert result == MatchResult(False, "predicted SQL failed: more than 10 rows")


def test_writes_are_refused_on_an_opened_path(tiny: Path, writable: sqlite3.Connection) -> None:
    result = execution_match(tiny, "SELECT 1", "DELETE FROM t")
    assert not result.match
    assert writable.execute("SELECT COUNT(*) FROM t").fetchone() == (4,)


def test_a_writable_connection_is_query_only_during_the_call(
    writable: sqlite3.Connection,
) -> None:
    result = execution_match(writable, "SELECT 1", "DELETE FROM t")
    assert result.reason is not None and "readonly" in result.reason
    assert writable.execute("SELECT COUNT(*) FROM t").fetchone() == (4,)
    assert writable.execute("PRAGMA query_only").fetchone() == (0,)


def test_the_time_limit_ends_with_the_call(writable: sqlite3.Connection) -> None:
    assert execution_match(writable, "SELECT 1", "SELECT 1", timeout_s=0.01).match
    time.sleep(0.05)
    count = RUNAWAY.replace("FROM r)", "FROM r LIMIT 100000)")
    assert writable.execute(count).fetchone() == (100_000,)


def test_summarize_counts_per_shape() -> None:
    def question(n: int, shape: str | None) -> EvalQuestion:
        return EvalQuestion(id=f"q{n}", question="?", sql="SELECT 1", db="d", shape=shape)

    results = [
        (question(1, "count"), MatchResult(True)),
        (question(2, "count"), MatchResult(False, "rows differ")),
        (question(3, "top_n"), MatchResult(True)),
        (question(4, None), MatchResult(False, "no predicted SQL")),
    ]
    assert summarize(results) == {
        "n": 4,
        "matched": 2,
        "accuracy": 0.5,
        "by_shape": {
            "count": {"n": 2, "matched": 1, "accuracy": 0.5},
            "top_n": {"n": 1, "matched": 1, "accuracy": 1.0},
            "unspecified": {"n": 1, "matched": 0, "accuracy": 0.0},
        },
    }
    assert summarize([]) == {"n": 0, "matched": 0, "accuracy": 0.0, "by_shape": {}}
