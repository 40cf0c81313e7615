"""schema_lookup and exposure rules on real SQLite files, including a 1,200-table schema."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from tools.databases import Database, DatabaseConfig
from tools.errors import SqlsageError
from tools.run_sql import run_sql
from tools.schema_lookup import schema_lookup
from tools.validate_sql import validate_for


@pytest.fixture(scope="module")
def wide_db(tmp_path_factory: pytest.TempPathFactory) -> Database:
    path = tmp_path_factory.mktemp("wide") / "wide.db"
    with sqlite3.connect(path) as conn:
        for i in range(1200):
            cols = ", ".join(f"c{j} INTEGER" for j in range(20))
            conn.execute(f"CREATE TABLE t{i:04d} (id INTEGER PRIMARY KEY, {cols})")
    conn.close()
    return Database(DatabaseConfig(name="wide", url=f"sqlite:///{path}"))


def test_sample_full_detail(sample_db: Database) -> None:
    page = schema_lookup(sample_db, tables=["orders", "customers"])
    assert [t.name for t in page.tables] == ["orders", "customers"]
    orders = page.tables[0]
    assert orders.comment and orders.row_estimate == 12000
    status = orders.column("status")
    assert status is not None and status.samples and "delivered" in status.samples
    assert "CREATE TABLE orders (" in page.text and "e.g. 'delivered'" in page.text
    assert "FOREIGN KEY (employee_id) REFERENCES employees(employee_id)" in page.text
    assert page.next_offset is None and page.total_tables == 2


def test_views_are_listed(sample_db: Database) -> None:
    page = schema_lookup(sample_db, tables=["order_totals"], detail="summary")
    assert page.tables[0].kind == "view" and "CREATE VIEW order_totals" in page.text


def test_big_schema_is_paged_not_dumped(wide_db: Database) -> None:
    started = time.monotonic()
    names = schema_lookup(wide_db, detail="names", limit=100)
    assert time.monotonic() - started < 5
    assert names.total_tables == 1200 and len(names.tables) == 100
    assert names.next_offset == 100 and "1100 more tables" in names.text
    last = schema_lookup(wide_db, detail="names", limit=100, offset=1100)
    assert last.next_offset is None and last.tables[-1].name == "t1199"
    matched = schema_lookup(wide_db, pattern="t011*", detail="summary")
    assert [t.name for t in matched.tables] == [f"t{i:04d}" for i in range(110, 120)]
    assert len(matched.tables[0].columns) == 21
    substring = schema_lookup(wide_db, pattern="0999", detail="names")
    assert [t.name for t in substring.tables] == ["t0999"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"detail": "everything"}, "detail must be"),
        ({"limit": 0}, "limit must be"),
        ({"offset": -1}, "offset >= 0"),
        ({"tables": ["ordrs"]}, "Table 'ordrs' does not exist"),
    ],
)
def test_bad_arguments(sample_db: Database, kwargs: dict[str, object], expected: str) -> None:
    with pytest.raises(SqlsageError) as info:
        schema_lookup(sample_db, **kwargs)  # type: ignore[arg-type]
    assert expected in info.value.message and info.value.hint


@pytest.fixture()
def restricted(sample_path: Path) -> Database:
    database = Database(
        DatabaseConfig(
            name="restricted",
            url=f"sqlite:///{sample_path}",
            exclude_tables=("returns",),
            exclude_columns=("customers.email", "employees.email"),
        )
    )
    yield database  # type: ignore[misc]
    database.dispose()


def test_excluded_objects_do_not_exist(restricted: Database) -> None:
    names = schema_lookup(restricted, detail="names", limit=500)
    assert "returns" not in [t.name for t in names.tables]
    customers = schema_lookup(restricted, tables=["customers"]).tables[0]
    assert customers.column("email") is None and customers.hidden_columns == 1
    with pytest.raises(SqlsageError) as table_error:
        schema_lookup(restricted, tables=["returns"])
    assert table_error.value.code == "unknown_table"
    rejected = validate_for(restricted, "SELECT email FROM customers")
    assert not rejected.valid and rejected.errors[0].code == "unknown_column"
    assert not validate_for(restricted, "SELECT * FROM returns").valid


def test_star_never_returns_excluded_columns(restricted: Database) -> None:
    for sql in (
        "SELECT * FROM customers",
        "SELECT c.* FROM customers c",
        "SELECT * FROM (SELECT * FROM customers) AS s",
        "SELECT * FROM customers c JOIN orders o ON o.customer_id = c.customer_id",
    ):
        result = run_sql(restricted, sql, max_rows=3)
        names = [c.name for c in result.columns]
        assert "email" not in names, sql
        assert "customer_id" in names and "name" in names
    joined = run_sql(
        restricted,
        "SELECT * FROM customers c JOIN orders o ON o.customer_id = c.customer_id",
        max_rows=1,
    )
    assert "status" in [c.name for c in joined.columns]


def test_include_tables(sample_path: Path) -> None:
    database = Database(
        DatabaseConfig(
            name="only", url=f"sqlite:///{sample_path}", include_tables=("orders", "customers")
        )
    )
    try:
        assert database.catalog.table_names() == ["customers", "orders"]
        assert not validate_for(database, "SELECT * FROM products").valid
    finally:
        database.dispose()


def test_comments_file_and_bad_comments_file(sample_path: Path, tmp_path: Path) -> None:
    comments = tmp_path / "c.json"
    comments.write_text(
        json.dumps(
            {
                "tables": {
                    "regions": {"comment": "Sales regions.", "columns": {"name": "Region name"}}
                }
            }
        )
    )
    database = Database(
        DatabaseConfig(name="c", url=f"sqlite:///{sample_path}", comments_file=str(comments))
    )
    page = schema_lookup(database, tables=["regions"])
    assert page.tables[0].comment == "Sales regions." and "-- Region name" in page.text
    database.dispose()
    comments.write_text("{not json")
    with pytest.raises(SqlsageError) as info:
        Database(
            DatabaseConfig(name="c", url=f"sqlite:///{sample_path}", comments_file=str(comments))
        ).catalog.table_names()
    assert info.value.code == "invalid_config" and "c.json" in info.value.message
