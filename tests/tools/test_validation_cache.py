"""validate_for remembers verdicts per schema: a repeat is a lookup, never a stale answer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import tools.validate_sql as validate_module
from tools.databases import Database, DatabaseConfig
from tools.validate_sql import validate_for


@pytest.fixture
def database(tmp_path: Path) -> Database:
    path = tmp_path / "shop.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (id INTEGER, total REAL)")
    conn.commit()
    conn.close()
    db = Database(DatabaseConfig(name="shop", url=f"sqlite:///{path}", max_rows=50))
    yield db
    db.dispose()


def test_a_repeat_is_not_validated_again_and_gets_its_own_copy(
    database: Database, parses: list[str]
) -> None:
    parses.clear()
    first = validate_for(database, "SELECT total FROM orders")
    first.tables.append("tampered")  # a caller's change must not reach the next caller
    first.sql = "DELETE FROM orders"
    second = validate_for(database, "SELECT total FROM orders")
    assert parses == ["SELECT total FROM orders"]
    assert second.valid and second.sql == "SELECT total FROM orders LIMIT 50"
    assert second.tables == ["orders"]
    # Another cap or source dialect is another verdict.
    assert validate_for(database, "SELECT total FROM orders", max_rows=5).sql.endswith("LIMIT 5")
    validate_for(database, "SELECT total FROM orders", from_dialect="postgres")
    assert len(parses) == 3


def test_a_schema_refresh_forgets_every_verdict(
    database: Database, parses: list[str], tmp_path: Path
) -> None:
    assert not validate_for(database, "SELECT name FROM customers").valid
    conn = sqlite3.connect(tmp_path / "shop.sqlite")
    conn.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    conn.commit()
    conn.close()
    database.catalog.refresh()
    parses.clear()
    assert validate_for(database, "SELECT name FROM customers").valid
    assert parses == ["SELECT name FROM customers"]


def test_the_cache_is_bounded_and_skips_long_statements(
    database: Database, monkeypatch: pytest.MonkeyPatch, parses: list[str]
) -> None:
    monkeypatch.setattr(validate_module, "_CACHED_VALIDATIONS", 4)
    for n in range(10):
        validate_for(database, f"SELECT total FROM orders WHERE id = {n}")
    assert len(database.catalog.validated) == 4
    long_sql = "SELECT total FROM orders WHERE " + " OR ".join(f"id = {n}" for n in range(3000))
    parses.clear()
    validate_for(database, long_sql)
    validate_for(database, long_sql)
    assert len(parses) == 2  # over 20,000 characters: validated every time, never stored
