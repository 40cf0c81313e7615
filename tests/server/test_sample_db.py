"""Tests for the generator of the bundled `sample` SQLite database."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.sample_db import SAMPLE_VERSION, comments_path, ensure_sample_db, generate_sample_db

ROW_RANGES = {
    "regions": (5, 5),
    "employees": (35, 45),
    "customers": (1_200, 1_800),
    "categories": (6, 10),
    "products": (120, 180),
    "orders": (10_000, 14_000),
    "order_items": (15_000, 35_000),
    "returns": (100, 2_000),
}


@contextlib.contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        yield conn


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = generate_sample_db(tmp_path_factory.mktemp("sample") / "sample.sqlite")
    with connect(path) as conn:
        yield conn


def objects(conn: sqlite3.Connection, kind: str) -> list[str]:
    sql = "SELECT name FROM sqlite_master WHERE type = ? AND name NOT LIKE 'sqlite_%' ORDER BY 1"
    return [name for (name,) in conn.execute(sql, (kind,))]


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def digest(path: Path) -> str:
    """Hash the schema and every table's rows in a fixed order, independent of file layout."""
    sha = hashlib.sha256()
    with connect(path) as conn:
        for (sql,) in conn.execute("SELECT sql FROM sqlite_master ORDER BY type, name"):
            sha.update(repr(sql).encode())
        for table in objects(conn, "table") + objects(conn, "view"):
            order = ", ".join(str(i) for i in range(1, len(columns(conn, table)) + 1))
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                sha.update(repr((table, row)).encode())
        sha.update(repr(conn.execute("PRAGMA user_version").fetchone()).encode())
    return sha.hexdigest()


def test_generation_is_deterministic(tmp_path: Path) -> None:
    first = generate_sample_db(tmp_path / "a" / "sample.sqlite")
    second = generate_sample_db(tmp_path / "b" / "sample.sqlite")
    assert digest(first) == digest(second)
    assert comments_path(first).read_bytes() == comments_path(second).read_bytes()


def test_generation_leaves_only_the_database_and_sidecar(tmp_path: Path) -> None:
    path = generate_sample_db(tmp_path / "sample.sqlite")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "sample.sqlite",
        "sample.sqlite.comments.json",
    ]
    assert comments_path(path) == tmp_path / "sample.sqlite.comments.json"


def test_foreign_keys_are_declared_and_hold(sample: sqlite3.Connection) -> None:
    for table in ("employees", "customers", "products", "orders", "order_items", "returns"):
        assert sample.execute(f"PRAGMA foreign_key_list({table})").fetchall(), table
    assert sample.execute("PRAGMA foreign_key_check").fetchall() == []


def test_row_counts_are_in_range(sample: sqlite3.Connection) -> None:
    assert objects(sample, "table") == sorted(ROW_RANGES)
    counts = {t: sample.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ROW_RANGES}
    for table, (low, high) in ROW_RANGES.items():
        assert low <= counts[table] <= high, (table, counts[table])
    assert 20_000 <= sum(counts.values()) <= 50_000


def test_orders_cover_three_full_years_with_growth_and_holiday_peak(
    sample: sqlite3.Connection,
) -> None:
    months = sample.execute(
        "SELECT substr(order_date, 1, 7), COUNT(*) FROM orders GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [m for m, _ in months] == [
        f"{y}-{m:02d}" for y in (2022, 2023, 2024) for m in range(1, 13)
    ]
    per_year = [sum(n for m, n in months if m.startswith(str(y))) for y in (2022, 2023, 2024)]
    assert per_year[0] < per_year[1] < per_year[2]
    holidays = sum(n for m, n in months if m[5:] in ("11", "12"))
    assert holidays / sum(per_year) > 3 / 12


def test_sidecar_describes_exactly_the_schema(sample: sqlite3.Connection) -> None:
    (path,) = [Path(row[2]) for row in sample.execute("PRAGMA database_list") if row[1] == "main"]
    sidecar = json.loads(comments_path(path).read_text(encoding="utf-8"))
    assert list(sidecar) == ["tables"]
    tables = sidecar["tables"]
    names = objects(sample, "table") + objects(sample, "view")
    assert sorted(tables) == sorted(names)
    for name in names:
        assert isinstance(tables[name]["comment"], str) and tables[name]["comment"].strip()
        described = tables[name]["columns"]
        assert sorted(described) == sorted(columns(sample, name)), name
        assert all(isinstance(d, str) and len(d.strip()) > 5 for d in described.values()), name


def test_ensure_regenerates_only_when_version_differs(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    path = ensure_sample_db(data_dir)
    assert path == data_dir / "sample.sqlite"
    before = path.stat()

    assert ensure_sample_db(data_dir) == path
    again = path.stat()
    assert (again.st_ino, again.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    with connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SAMPLE_VERSION + 1}")
        conn.commit()
    stale = path.stat()
    ensure_sample_db(data_dir)
    after = path.stat()
    assert after.st_ino != stale.st_ino
    with connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SAMPLE_VERSION


def test_ensure_replaces_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "sample.sqlite").write_bytes(b"not a database" * 100)
    path = ensure_sample_db(tmp_path)
    with connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] > 0
    assert comments_path(path).exists()
    assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]


def test_employee_hierarchy_has_one_root_and_no_cycles(sample: sqlite3.Connection) -> None:
    manager = dict(sample.execute("SELECT employee_id, manager_id FROM employees"))
    roots = [e for e, m in manager.items() if m is None]
    assert len(roots) == 1
    for employee in manager:
        seen = {employee}
        while manager[employee] is not None:
            employee = manager[employee]
            assert employee not in seen, f"cycle through employee {employee}"
            seen.add(employee)
        assert employee == roots[0]
    depth_two = sample.execute(
        "SELECT COUNT(*) FROM employees e JOIN employees m ON e.manager_id = m.employee_id "
        "WHERE m.manager_id IS NOT NULL"
    ).fetchone()[0]
    assert depth_two > 20  # reps report to regional managers, not straight to the root


def test_top_tenth_of_customers_place_over_30_percent_of_orders(
    sample: sqlite3.Connection,
) -> None:
    counts = [n for (n,) in sample.execute("SELECT COUNT(*) FROM orders GROUP BY customer_id")]
    counts.sort(reverse=True)
    top = counts[: len(counts) // 10]
    assert sum(top) / sum(counts) > 0.30


@pytest.mark.parametrize(
    ("rule", "sql"),
    [
        (
            "rep outside the customer's region",
            "SELECT COUNT(*) FROM orders o JOIN customers c USING (customer_id) "
            "JOIN employees e USING (employee_id) WHERE e.region_id IS NOT c.region_id",
        ),
        (
            "order before signup",
            "SELECT COUNT(*) FROM orders o JOIN customers c USING (customer_id) "
            "WHERE o.order_date < c.signup_date",
        ),
        (
            "product sold before launch",
            "SELECT COUNT(*) FROM order_items i JOIN orders o USING (order_id) "
            "JOIN products p USING (product_id) WHERE o.order_date < p.launched_on",
        ),
        (
            "ship date does not match status",
            "SELECT COUNT(*) FROM orders WHERE (ship_date IS NULL) "
            "<> (status IN ('pending', 'cancelled')) OR ship_date < order_date",
        ),
        (
            "return without a delivered line to return",
            "SELECT COUNT(*) FROM returns r JOIN orders o USING (order_id) "
            "LEFT JOIN order_items i ON i.order_id = r.order_id AND i.product_id = r.product_id "
            "WHERE i.order_id IS NULL OR r.quantity > i.quantity OR o.status <> 'delivered' "
            "OR r.return_date <= o.ship_date OR r.return_date > '2024-12-31'",
        ),
        (
            "money not rounded to cents",
            "SELECT COUNT(*) FROM order_items WHERE unit_price <> ROUND(unit_price, 2) "
            "OR discount NOT IN (0, 0.05, 0.1, 0.15, 0.2) OR quantity < 1",
        ),
        (
            "product price or cost not sensible",
            "SELECT COUNT(*) FROM products WHERE unit_cost <= 0 OR unit_cost >= unit_price "
            "OR unit_price <> ROUND(unit_price, 2) OR unit_cost <> ROUND(unit_cost, 2)",
        ),
    ],
)
def test_business_rules_hold(sample: sqlite3.Connection, rule: str, sql: str) -> None:
    assert sample.execute(sql).fetchone()[0] == 0, rule
