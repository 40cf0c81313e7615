"""Spider SQLite databases copied into PostgreSQL (one schema each) for the run_sql benchmark.

The load is idempotent: each schema carries a comment with the loader version and the SHA-256 of
its SQLite file, written in the same transaction as the rows, so a schema whose comment matches
is complete and is reused. An advisory lock serialises concurrent runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import sqlglot
from psycopg import sql
from sqlglot import exp

HOST_PORT = "127.0.0.1:5432"
ADMIN_URL = f"postgresql://postgres@{HOST_PORT}/postgres"
BENCH_DB = "sqlsage_bench"
BENCH_URL = f"postgresql://postgres@{HOST_PORT}/{BENCH_DB}"
SQLSAGE_URL = f"postgresql+psycopg://postgres@{HOST_PORT}/{BENCH_DB}"
LOADER_VERSION = 1
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"sqlsage_bench_load").digest()[:8], "big", signed=True)

# SQLite affinity -> PostgreSQL type, and the storage classes each type accepts as they are.
_PG_TYPES = {
    "INTEGER": "bigint",
    "REAL": "double precision",
    "NUMERIC": "numeric",
    "TEXT": "text",
    "BLOB": "bytea",
}
_FITS = {
    "bigint": {"integer"},
    "double precision": {"integer", "real"},
    "numeric": {"integer", "real"},
    "bytea": {"blob"},
    "text": {"text", "integer", "real"},
}


def unavailable() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"PostgreSQL at {HOST_PORT} (user postgres) is not reachable: {first}"


def affinity(declared: str) -> str:
    """SQLite's column affinity for a declared type (https://sqlite.org/datatype3.html 3.1)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(k in upper for k in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in upper or not upper:
        return "BLOB"
    if any(k in upper for k in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def ensure_loaded(paths: dict[str, Path]) -> dict[str, str]:
    """Load each SQLite file into schema <db_id> of sqlsage_bench; returns db_id -> 'reused' or
    'loaded'."""
    _ensure_database()
    status: dict[str, str] = {}
    with psycopg.connect(BENCH_URL, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            for db_id, path in paths.items():
                stamp = f"sqlsage bench loader v{LOADER_VERSION} sha256={_sha256(path)}"
                if _schema_comment(conn, db_id) == stamp:
                    status[db_id] = "reused"
                    continue
                with conn.transaction():
                    _load_schema(conn, db_id, path)
                    conn.execute(
                        sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                            sql.Identifier(db_id), sql.Literal(stamp)
                        )
                    )
                conn.execute(sql.SQL("ANALYZE"))
                status[db_id] = "loaded"
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return status


def drop_database() -> None:
    """Remove sqlsage_bench (only when asked: keeping it makes the next run faster)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB))
        )


def _ensure_database() -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,))
        if exists.fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a concurrent run won
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _schema_comment(conn: psycopg.Connection[Any], schema: str) -> str | None:
    row = conn.execute(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
        (schema,),
    ).fetchone()
    return row[0] if row else None


@contextlib.contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.text_factory = lambda b: b.decode("utf-8", "replace")
    try:
        yield conn
    finally:
        conn.close()


def _load_schema(conn: psycopg.Connection[Any], schema: str, path: Path) -> None:
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    with _sqlite(path) as source:
        tables = [
            r[0]
            for r in source.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            _copy_table(conn, source, schema, table)


def _copy_table(
    conn: psycopg.Connection[Any], source: sqlite3.Connection, schema: str, table: str
) -> None:
    quoted = '"' + table.replace('"', '""') + '"'
    columns = [(r[1], r[2] or "") for r in source.execute(f"PRAGMA table_info({quoted})")]
    types = []
    for name, declared in columns:
        wanted = _PG_TYPES[affinity(declared)]
        col = '"' + name.replace('"', '""') + '"'
        stored = {r[0] for r in source.execute(f"SELECT DISTINCT typeof({col}) FROM {quoted}")}
        # SQLite keeps whatever was inserted; a column holding other kinds becomes text.
        types.append(wanted if stored - {"null"} <= _FITS[wanted] else "text")
    target = sql.Identifier(schema, table.lower())
    names = [sql.Identifier(name.lower()) for name, _ in columns]
    conn.execute(
        sql.SQL("CREATE TABLE {} ({})").format(
            target,
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(n, sql.SQL(t)) for n, t in zip(names, types, strict=True)
            ),
        )
    )
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(target, sql.SQL(", ").join(names))
    with conn.cursor().copy(copy_sql) as copy:
        for row in source.execute(f"SELECT * FROM {quoted}"):
            copy.write_row([_value(v, t) for v, t in zip(row, types, strict=True)])


def _value(value: Any, pg_type: str) -> Any:
    if value is None:
        return None
    if pg_type == "text":
        text = value.hex() if isinstance(value, bytes) else str(value)
        return text.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    return value


def column_names(path: Path) -> set[str]:
    """Every column name of a SQLite file, lower-cased."""
    with _sqlite(path) as source:
        tables = [
            r[0] for r in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {
            r[1].lower()
            for t in tables
            for r in source.execute('PRAGMA table_info("' + t.replace('"', '""') + '")')
        }


def to_postgres(sqlite_sql: str, schema: str, columns: set[str]) -> str:
    """Spider SQL (SQLite) as PostgreSQL: tables qualified with `schema`, names lower-cased, and
    a double-quoted name that is no column read as the string SQLite takes it for."""
    tree = sqlglot.parse_one(sqlite_sql, read="sqlite")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if (
            isinstance(table.this, exp.Identifier)
            and not table.db
            and table.name.lower() not in ctes
        ):
            table.set("db", exp.to_identifier(schema))
    for column in list(tree.find_all(exp.Column)):
        ident = column.this
        if (
            isinstance(ident, exp.Identifier)
            and ident.quoted
            and not column.table
            and ident.name.lower() not in columns
        ):
            column.replace(exp.Literal.string(ident.name))
    for identifier in tree.find_all(exp.Identifier):
        identifier.set("this", identifier.name.lower())
    return tree.sql(dialect="postgres")
