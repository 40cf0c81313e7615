"""DatabaseRegistry and URL handling, without a server."""

from __future__ import annotations

import pytest

from tools.databases import Database, DatabaseConfig, DatabaseRegistry, mask_url, normalize_url
from tools.errors import SqlsageError


@pytest.mark.parametrize(
    ("url", "driver", "dialect"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg", "postgres"),
        ("postgres://u@h/db", "postgresql+psycopg", "postgres"),
        ("mysql://u@h/db", "mysql+pymysql", "mysql"),
        ("mariadb://u@h/db", "mariadb+pymysql", "mysql"),
        ("mssql+pymssql://u@h/db", "mssql+pymssql", "tsql"),
        ("snowflake://u@acct/db", "snowflake", "snowflake"),
        ("duckdb:///x.duckdb", "duckdb", "duckdb"),
    ],
)
def test_drivers_and_dialects(url: str, driver: str, dialect: str) -> None:
    database = Database(DatabaseConfig(name="x", url=url))
    assert database.url.drivername == driver and database.dialect == dialect


def test_best_effort_dialect_without_installed_driver_is_a_clear_error() -> None:
    database = Database(DatabaseConfig(name="wh", url="snowflake://u:pw@acct/db"))
    with pytest.raises(SqlsageError) as info:
        _ = database.engine
    assert info.value.code == "invalid_config" and "snowflake" in info.value.message
    assert "pw" not in info.value.message


def test_mask_url() -> None:
    assert mask_url("postgresql://me:hunter2@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert "hunter2" not in mask_url(normalize_url("mysql://me:hunter2@db/x"))
    assert mask_url("sqlite:///file.db") == "sqlite:///file.db"


def test_not_a_url() -> None:
    with pytest.raises(SqlsageError) as info:
        normalize_url("just words")
    assert info.value.code == "invalid_config" and "just words" in info.value.message


def test_registry_unknown_name_suggests() -> None:
    registry = DatabaseRegistry.from_configs(
        [
            DatabaseConfig(name="sales", url="sqlite:///a.db"),
            DatabaseConfig(name="chinook", url="sqlite:///b.db"),
        ]
    )
    with pytest.raises(SqlsageError) as info:
        registry.get("salse")
    assert info.value.message == "Unknown database 'salse'. Known: sales, chinook."
    assert info.value.hint is not None and "Did you mean 'sales'?" in info.value.hint
    assert registry.names() == ["sales", "chinook"]


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(SqlsageError) as info:
        _ = Database(DatabaseConfig(name="m", url="sqlite://")).engine
    assert info.value.code == "database_unreachable" and "in-memory" in info.value.message
