"""run_sql on real SQLite files: results, caps, time limits, JSON-safe values, errors."""

from __future__ import annotations

import sqlite3
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from tools.databases import Database, DatabaseConfig
from tools.errors import SqlsageError
from tools.run_sql import run_sql

ONE_MILLION = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) "
    "SELECT x, x * 2 AS y FROM c"
)
RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"


def test_result_matches_direct_sqlite(sample_db: Database, sample_path: Path) -> None:
    sql = "SELECT segment, COUNT(*) AS n FROM customers GROUP BY segment ORDER BY n DESC"
    result = run_sql(sample_db, sql)
    with sqlite3.connect(sample_path) as conn:
        expected = conn.execute(sql).fetchall()
    conn.close()
    assert [tuple(r) for r in result.rows] == expected
    assert [(c.name, c.type) for c in result.columns] == [("segment", "text"), ("n", "integer")]
    assert result.row_count == len(expected) and not result.truncated
    assert result.sql.endswith("LIMIT 1000") and result.elapsed_ms > 0


def test_row_cap_sets_truncated_and_bounds_memory(sample_db: Database) -> None:
    tracemalloc.start()
    result = run_sql(sample_db, ONE_MILLION, max_rows=1000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.row_count == 1000 and result.truncated is True
    assert result.rows[-1] == [1000, 2000]
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a capped 1M-row result"


def test_own_limit_under_cap_is_not_truncated(sample_db: Database) -> None:
    result = run_sql(sample_db, "SELECT customer_id FROM customers LIMIT 7", max_rows=7)
    assert result.row_count == 7 and result.truncated is False


@pytest.mark.parametrize("bad", [0, -1, 10**9])
def test_max_rows_out_of_range(sample_db: Database, bad: int) -> None:
    with pytest.raises(SqlsageError) as info:
        run_sql(sample_db, "SELECT 1", max_rows=bad)
    assert info.value.code == "row_cap" and str(bad) in info.value.message


def test_runaway_query_is_stopped_and_process_stays_responsive(sample_db: Database) -> None:
    started = time.monotonic()
    with pytest.raises(SqlsageError) as info:
        run_sql(sample_db, RUNAWAY, timeout_s=0.5)
    assert info.value.code == "timeout"
    assert time.monotonic() - started < 3
    assert "0.5 s" in info.value.message and info.value.hint
    # The pooled connection is clean and usable right after.
    assert run_sql(sample_db, "SELECT COUNT(*) FROM regions").rows == [[5]]


def test_cross_join_of_big_tables_is_stopped(sample_db: Database) -> None:
    sql = "SELECT COUNT(*) FROM order_items a, order_items b, order_items c"
    with pytest.raises(SqlsageError) as info:
        run_sql(sample_db, sql, timeout_s=0.3)
    assert info.value.code == "timeout"


def test_concurrent_queries_while_one_runs_away(sample_db: Database) -> None:
    errors: list[str] = []

    def slow() -> None:
        try:
            run_sql(sample_db, RUNAWAY, timeout_s=1.5)
        except SqlsageError as exc:
            errors.append(exc.code)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert run_sql(sample_db, "SELECT COUNT(*) FROM orders").rows == [[12000]]
    assert time.monotonic() - started < 0.5, "other queries are not blocked by a runaway one"
    thread.join()
    assert errors == ["timeout"]


def test_cancel_stops_the_query(sample_db: Database) -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(SqlsageError) as info:
        run_sql(sample_db, RUNAWAY, timeout_s=30, cancel=cancel)
    assert info.value.code == "cancelled"
    assert time.monotonic() - started < 2


def test_json_safe_values(tmp_path: Path) -> None:
    path = tmp_path / "types.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (b BLOB, f REAL, i INTEGER, s TEXT, n TEXT)")
        conn.execute("INSERT INTO t VALUES (x'00ff', 1.5, 9007199254740993, 'é', NULL)")
    conn.close()
    database = Database(DatabaseConfig(name="types", url=f"sqlite:///{path}"))
    try:
        result = run_sql(database, "SELECT b, f, i, s, n FROM t")
    finally:
        database.dispose()
    assert result.rows == [["base64:AP8=", 1.5, 9007199254740993, "é", None]]
    assert [c.type for c in result.columns] == ["bytes", "number", "integer", "text", "unknown"]
    result.model_dump_json()  # serializable as it is


def test_database_error_is_clear(sample_db: Database) -> None:
    with pytest.raises(SqlsageError) as info:
        run_sql(sample_db, "SELECT nosuchfunction(1) FROM regions")
    assert info.value.code == "query_failed"
    assert "nosuchfunction" in info.value.message.lower()


def test_validation_errors_come_back_from_run(sample_db: Database) -> None:
    with pytest.raises(SqlsageError) as info:
        run_sql(sample_db, "SELECT revnue FROM orders")
    assert info.value.code == "unknown_column" and info.value.line == 1 and info.value.col == 8


def test_missing_sqlite_file_is_unreachable(tmp_path: Path) -> None:
    database = Database(DatabaseConfig(name="gone", url=f"sqlite:///{tmp_path / 'nope.db'}"))
    with pytest.raises(SqlsageError) as info:
        run_sql(database, "SELECT 1")
    assert info.value.code == "database_unreachable"
    assert "nope.db" in info.value.message
    assert not (tmp_path / "nope.db").exists(), "opening read-only never creates the file"
