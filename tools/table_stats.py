"""Row estimates and sample values for schema lookup, each query bounded in time."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tools.catalog import LOW_CARDINALITY, SAMPLE_VALUES, TableInfo

if TYPE_CHECKING:
    from tools.databases import Database

_TEXT_MARKERS = ("CHAR", "TEXT", "STRING", "CLOB", "ENUM", "NAME")
_TABLE_BUDGET_S = 5.0


def _quote(database: Database, name: str) -> str:
    preparer = database.engine.dialect.identifier_preparer
    return ".".join(preparer.quote(part) for part in name.split("."))


def _scalar_rows(database: Database, sql: str, timeout_s: float) -> list[tuple[Any, ...]] | None:
    """Rows of an internal statistics query, or None if it failed or ran out of time."""
    try:
        with (
            database.raw_connection() as raw,
            database.driver.statement(raw, timeout_s, None) as cursor,
        ):
            database.driver.execute(cursor, sql)
            return list(cursor.fetchall())
    except Exception:  # statistics are optional; a failure just omits them
        return None


def row_estimate(database: Database, table: str, timeout_s: float) -> int | None:
    """A cheap row count: catalog statistics where the engine keeps them, else COUNT(*)."""
    kind = database.driver.kind
    if kind == "postgresql":
        literal = table.replace("'", "''")
        rows = _scalar_rows(
            database,
            f"SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass('{literal}')",
            timeout_s,
        )
        if rows and rows[0][0] is not None and rows[0][0] > 0:
            return int(rows[0][0])
    rows = _scalar_rows(database, f"SELECT COUNT(*) FROM {_quote(database, table)}", timeout_s)
    return int(rows[0][0]) if rows else None


def sample_values(
    database: Database, table: str, column: str, timeout_s: float
) -> list[str] | None:
    """Most frequent values of a low-cardinality text column (None if it has many values)."""
    values = distinct_values(database, table, column, limit=LOW_CARDINALITY, timeout_s=timeout_s)
    return [v[:60] for v in values[:SAMPLE_VALUES]] if values else None


def collect_stats(database: Database, info: TableInfo, timeout_s: float) -> None:
    """Fill info.row_estimate and the samples of its text columns, within a time budget."""
    started = time.monotonic()
    info.row_estimate = row_estimate(database, info.name, timeout_s)
    for column in info.columns:
        if time.monotonic() - started > _TABLE_BUDGET_S:
            break
        if is_text_column(column.type):
            column.samples = sample_values(database, info.name, column.name, timeout_s)


def distinct_values(
    database: Database, table: str, column: str, *, limit: int, timeout_s: float
) -> list[str] | None:
    """Every distinct value of a column when it has at most `limit` of them, else None."""
    col = _quote(database, column)
    sql = (
        f"SELECT {col} FROM {_quote(database, table)} WHERE {col} IS NOT NULL "
        f"GROUP BY {col} ORDER BY COUNT(*) DESC, {col} LIMIT {limit + 1}"
    )
    rows = _scalar_rows(database, sql, timeout_s)
    if rows is None or len(rows) > limit:
        return None
    return [str(r[0])[:120] for r in rows]


def is_text_column(declared_type: str) -> bool:
    """Whether a declared column type holds text (SQLite's untyped columns count)."""
    declared = declared_type.upper()
    return any(marker in declared for marker in _TEXT_MARKERS) or declared in ("", "NULL")
