"""run_sql: validate, then execute on the read-only connection with a time limit and a row cap."""

from __future__ import annotations

import threading
import time
from typing import Any

from tools.databases import Database
from tools.errors import CANCELLED, INVALID_ARGUMENT, ROW_CAP, TIMEOUT, SqlsageError
from tools.json_values import infer_type, json_safe_row
from tools.results import Column, QueryResult
from tools.validate_sql import ValidationResult, validate_for

MAX_TIMEOUT_S = 3600.0


def run_sql(
    database: Database,
    sql: str,
    *,
    max_rows: int | None = None,
    timeout_s: float | None = None,
    cancel: threading.Event | None = None,
) -> QueryResult:
    """Validate one SELECT and run it read-only; rows capped at max_rows (truncated flag)."""
    cap = check_max_rows(database, max_rows)
    timeout = check_timeout(database, timeout_s)
    return run_validated(database, validated(database, sql, cap), cap, timeout, cancel)


def validated(database: Database, sql: str, cap: int) -> ValidationResult:
    """The validation of `sql` with the row cap applied; a rejection raises its first error."""
    validation = validate_for(database, sql, max_rows=cap)
    if not validation.valid:
        first = validation.errors[0]
        raise SqlsageError(
            first.code, first.message, hint=first.hint, sql=sql, line=first.line, col=first.col
        )
    return validation


def run_validated(
    database: Database,
    validation: ValidationResult,
    cap: int,
    timeout_s: float,
    cancel: threading.Event | None = None,
) -> QueryResult:
    """Run what `validated` accepted. Where the validator set the LIMIT, the query runs with
    cap+1 so that one extra row says it was truncated; what we report is the SQL with LIMIT
    cap, which the user sees."""
    result = execute_read_only(
        database,
        validation.sql_with_limit(cap + 1),
        max_rows=cap,
        timeout_s=timeout_s,
        cancel=cancel,
    )
    result.sql = validation.sql
    return result


def check_max_rows(database: Database, max_rows: int | None) -> int:
    """The row cap to use; out-of-range values are an error, not silently changed."""
    ceiling = database.config.max_rows
    if max_rows is None:
        return ceiling
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise SqlsageError(
            ROW_CAP,
            f"max_rows must be a whole number >= 1, got {max_rows!r}.",
            hint=f"Use 1..{ceiling}.",
        )
    if max_rows > ceiling:
        raise SqlsageError(
            ROW_CAP,
            f"max_rows {max_rows} is above the cap of {ceiling} for database '{database.name}'.",
            hint=f"Use at most {ceiling}, or raise max_rows under [databases.{database.name}].",
        )
    return max_rows


def check_timeout(database: Database, timeout_s: float | None) -> float:
    """The time limit to use, in seconds."""
    if timeout_s is None:
        return database.config.timeout_s
    if not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= MAX_TIMEOUT_S:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"timeout must be between 0 and {MAX_TIMEOUT_S:g} s, got {timeout_s!r}.",
            hint="Pass a positive number of seconds, e.g. --timeout 30.",
        )
    return float(timeout_s)


def execute_read_only(
    database: Database,
    sql: str,
    *,
    max_rows: int,
    timeout_s: float,
    cancel: threading.Event | None = None,
) -> QueryResult:
    """Run SQL as it is on the read-only connection. Callers validate first (run_sql does);
    tests call it directly to prove the connection alone refuses writes."""
    driver = database.driver
    started = time.perf_counter()
    with database.raw_connection() as raw:
        try:
            with driver.statement(raw, timeout_s, cancel) as cursor:
                driver.execute(cursor, sql)
                description = cursor.description or []
                rows = cursor.fetchmany(max_rows + 1) if description else []
        except SqlsageError:
            raise
        except Exception as exc:  # every driver raises its own classes
            raise _execution_error(database, exc, sql, timeout_s, cancel) from None
    elapsed_ms = (time.perf_counter() - started) * 1000
    truncated = len(rows) > max_rows
    rows = rows[:max_rows]
    columns = [
        Column(name=str(d[0]), type=_column_type(database, d, rows, i))
        for i, d in enumerate(description)
    ]
    return QueryResult(
        columns=columns,
        rows=[json_safe_row(row) for row in rows],
        row_count=len(rows),
        truncated=truncated,
        elapsed_ms=round(elapsed_ms, 3),
        sql=sql,
        dialect=database.dialect,
        database=database.name,
    )


def _execution_error(
    database: Database, exc: Exception, sql: str, timeout_s: float, cancel: threading.Event | None
) -> SqlsageError:
    if database.driver.is_timeout(exc):
        if cancel is not None and cancel.is_set():
            return SqlsageError(
                CANCELLED,
                f"The query on '{database.name}' was cancelled and stopped on the server.",
                sql=sql,
            )
        return SqlsageError(
            TIMEOUT,
            f"The query on '{database.name}' ran past its {timeout_s:g} s limit and was stopped.",
            hint="Add filters or a LIMIT, aggregate first, or raise the timeout "
            "(--timeout / timeout_s).",
            sql=sql,
        )
    if _is_connection_error(exc):
        return database.unreachable(exc)
    return database.failure(exc, sql)


def _is_connection_error(exc: Exception) -> bool:
    name = type(exc).__name__
    text = str(exc).lower()
    return name in ("OperationalError", "InterfaceError") and any(
        marker in text
        for marker in (
            "connection",
            "server closed",
            "lost",
            "gone away",
            "can't connect",
            "terminating",
        )
    )


# PostgreSQL type OIDs and MySQL field type codes -> normalized column types.
_PG_TYPES = {
    16: "boolean",
    20: "integer",
    21: "integer",
    23: "integer",
    26: "integer",
    700: "number",
    701: "number",
    1700: "number",
    790: "number",
    25: "text",
    1042: "text",
    1043: "text",
    19: "text",
    18: "text",
    1082: "date",
    1114: "datetime",
    1184: "datetime",
    1083: "time",
    1266: "time",
    17: "bytes",
    114: "json",
    3802: "json",
    2950: "text",
}
_MYSQL_TYPES = {
    0: "number",
    246: "number",
    4: "number",
    5: "number",
    1: "integer",
    2: "integer",
    3: "integer",
    8: "integer",
    9: "integer",
    13: "integer",
    16: "integer",
    10: "date",
    14: "date",
    7: "datetime",
    12: "datetime",
    11: "time",
    245: "json",
    15: "text",
    253: "text",
    254: "text",
    247: "text",
    248: "text",
}


def _column_type(database: Database, description: Any, rows: list[Any], index: int) -> str:
    code = description[1]
    kind = database.driver.kind
    mapped = None
    if kind == "postgresql" and isinstance(code, int):
        mapped = _PG_TYPES.get(code)
    elif kind == "mysql" and isinstance(code, int):
        mapped = _MYSQL_TYPES.get(code)
    return mapped or infer_type([row[index] for row in rows[:200]])
