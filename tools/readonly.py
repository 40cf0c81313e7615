"""Read-only connections per dialect: the database itself refuses writes, whatever SQL arrives.

This is safety layer 2 of ../shared/ARCHITECTURE.md; validate_sql is layer 1. Each driver opens
connections that cannot write, runs exactly one statement per call inside a read-only
transaction that is always rolled back, and stops a query on the server when it times out or
is cancelled.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import QueuePool

from tools.errors import DATABASE_UNREACHABLE, SqlsageError

# SQLite: what the authorizer lets through. Everything else (writes, DDL, ATTACH, PRAGMA
# assignments, ...) is denied before it runs, even if query_only were switched off.
_SQLITE_ALLOWED_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_SELECT,
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_FUNCTION,
        getattr(sqlite3, "SQLITE_RECURSIVE", 33),
        sqlite3.SQLITE_TRANSACTION,
    }
)
# Pragmas that only read (used by SQLAlchemy's reflection and by schema lookup). The first
# kind takes a table or index name as its argument; the second must have none (a value sets).
_SQLITE_NAME_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
    }
)
_SQLITE_READ_PRAGMAS = frozenset(
    {
        "database_list",
        "read_uncommitted",
        "query_only",
        "user_version",
        "schema_version",
        "encoding",
        "collation_list",
        "function_list",
    }
)
_SQLITE_DENIED_FUNCTIONS = frozenset(
    {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile"}
)
_SQLITE_PROGRESS_STEPS = 200_000  # VM steps between deadline checks: well under 1 ms of work


def _sqlite_authorizer(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
    if action == sqlite3.SQLITE_PRAGMA:
        # A pragma with a value (arg2) sets something; only reads of known pragmas pass.
        pragma = (arg1 or "").lower()
        ok = pragma in _SQLITE_NAME_PRAGMAS or (arg2 is None and pragma in _SQLITE_READ_PRAGMAS)
        return sqlite3.SQLITE_OK if ok else sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _SQLITE_DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK if action in _SQLITE_ALLOWED_ACTIONS else sqlite3.SQLITE_DENY


def open_sqlite_read_only(path: str) -> sqlite3.Connection:
    """Open a SQLite file so that nothing can write to it or create any other file."""
    if not Path(path).is_file():
        raise SqlsageError(
            DATABASE_UNREACHABLE,
            f"SQLite file '{path}' does not exist.",
            hint="Check the path in the database URL (sqlite:///relative.db or "
            "sqlite:////absolute/path.db).",
        )
    uri = "file:" + Path(path).resolve().as_posix().replace("?", "%3f").replace("#", "%23")
    conn = sqlite3.connect(uri + "?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA query_only = 1")
    # ATTACH and VACUUM INTO create files even on a read-only connection: allow none.
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.set_authorizer(_sqlite_authorizer)
    return conn


class ReadOnlyDriver:
    """Best effort for dialects without a first-class driver: rollback after every statement."""

    kind = "other"

    def __init__(self, url: URL) -> None:
        self.url = url

    def create_engine(self, timeout_s: float) -> Engine:
        """A pooled engine whose connections are read-only at the database."""
        return create_engine(self.url, pool_pre_ping=True)

    @contextmanager
    def statement(
        self, raw: Any, timeout_s: float, cancel: threading.Event | None
    ) -> Iterator[Any]:
        """A cursor inside a read-only transaction with a server-side time limit."""
        self.begin(raw, timeout_s)
        cursor = self.cursor(raw)
        try:
            with _Watchdog(self, raw, timeout_s, cancel):
                yield cursor
        finally:
            cursor.close()
            raw.rollback()

    def begin(self, raw: Any, timeout_s: float) -> None:
        """Open a read-only transaction with the time limit (nothing to do by default)."""

    def cursor(self, raw: Any) -> Any:
        """The cursor that runs the statement."""
        return raw.cursor()

    def execute(self, cursor: Any, sql: str) -> None:
        """Run exactly one statement."""
        cursor.execute(sql)

    def cancel(self, raw: Any) -> None:
        """Stop the running statement on the server (best effort)."""

    def is_timeout(self, exc: BaseException) -> bool:
        """Whether a driver error means the statement was stopped by a time limit or cancel."""
        return False

    def session_read_only(self, raw: Any) -> bool:
        """Whether the database itself refuses writes on this connection."""
        return False


class SqliteDriver(ReadOnlyDriver):
    """SQLite: mode=ro + query_only + authorizer + no ATTACH; progress handler for time limits."""

    kind = "sqlite"

    def create_engine(self, timeout_s: float) -> Engine:
        path = self.url.database or ""
        if not path or path == ":memory:":
            raise SqlsageError(
                DATABASE_UNREACHABLE,
                "An in-memory SQLite database is empty and cannot be queried read-only.",
                hint="Point the URL at a SQLite file: sqlite:///path/to/file.db",
            )
        open_sqlite_read_only(path).close()  # fail early, with a clear message
        return create_engine(
            "sqlite://", creator=lambda: open_sqlite_read_only(path), poolclass=QueuePool
        )

    @contextmanager
    def statement(
        self, raw: Any, timeout_s: float, cancel: threading.Event | None
    ) -> Iterator[Any]:
        conn: sqlite3.Connection = raw.dbapi_connection
        deadline = time.monotonic() + timeout_s

        def stop() -> int:
            return int(time.monotonic() > deadline or (cancel is not None and cancel.is_set()))

        conn.set_progress_handler(stop, _SQLITE_PROGRESS_STEPS)
        cursor = conn.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            conn.set_progress_handler(None, 0)
            conn.rollback()

    def is_timeout(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "interrupted" in str(exc)

    def session_read_only(self, raw: Any) -> bool:
        row = raw.dbapi_connection.execute("PRAGMA query_only").fetchone()
        return bool(row and row[0] == 1)


class PostgresDriver(ReadOnlyDriver):
    """PostgreSQL: default_transaction_read_only at connect, READ ONLY transactions, one
    statement per call (extended protocol), statement_timeout on the server."""

    kind = "postgresql"

    def create_engine(self, timeout_s: float) -> Engine:
        options = (
            f"-c default_transaction_read_only=on -c statement_timeout={int(timeout_s * 1000)}"
        )
        return create_engine(
            self.url,
            pool_pre_ping=True,
            connect_args={"options": options, "connect_timeout": 5, "application_name": "sqlsage"},
        )

    def begin(self, raw: Any, timeout_s: float) -> None:
        setup = raw.dbapi_connection.cursor()
        try:
            # A SET issued by an earlier statement cannot carry over: every transaction is
            # declared read-only again, and its time limit is local to it. (Our own fixed
            # text, so one round trip for both.)
            setup.execute(
                "SET TRANSACTION READ ONLY; "
                f"SET LOCAL statement_timeout = {max(1, int(timeout_s * 1000))}"
            )
        finally:
            setup.close()

    def cursor(self, raw: Any) -> Any:
        return _single_statement_cursor_class()(raw.dbapi_connection)

    def cancel(self, raw: Any) -> None:
        raw.dbapi_connection.cancel_safe(timeout=5)

    def is_timeout(self, exc: BaseException) -> bool:
        return getattr(exc, "sqlstate", None) == "57014"  # query_canceled

    def session_read_only(self, raw: Any) -> bool:
        cursor = raw.cursor()
        try:
            cursor.execute("SHOW default_transaction_read_only")
            return bool(cursor.fetchone()[0] == "on")
        finally:
            cursor.close()
            raw.rollback()


@functools.cache
def _single_statement_cursor_class() -> type[Any]:
    """A psycopg cursor that always uses the extended query protocol, which runs exactly one
    statement: "COMMIT; DROP ..." is refused by the server itself. Unlike prepare=True it
    creates no named statement (psycopg deallocates all of those on every rollback)."""
    import psycopg

    class SingleStatementCursor(psycopg.Cursor):
        def _execute_send(
            self, query: Any, *, force_extended: bool = False, binary: bool | None = None
        ) -> None:
            super()._execute_send(query, force_extended=True, binary=binary)

    return SingleStatementCursor


class MysqlDriver(ReadOnlyDriver):
    """MySQL/MariaDB: SESSION TRANSACTION READ ONLY (refuses DDL too), READ ONLY transactions,
    no multi-statements, max_statement_time (MariaDB) / max_execution_time (MySQL)."""

    kind = "mysql"

    def create_engine(self, timeout_s: float) -> Engine:
        return create_engine(
            self.url,
            pool_pre_ping=True,
            connect_args={
                "init_command": "SET SESSION TRANSACTION READ ONLY",
                "connect_timeout": 5,
            },
        )

    @staticmethod
    def _is_mariadb(raw: Any) -> bool:
        return "mariadb" in raw.dbapi_connection.get_server_info().lower()

    def begin(self, raw: Any, timeout_s: float) -> None:
        cursor = raw.cursor()
        try:
            # Re-declared for every statement: a SET from an earlier one cannot carry over.
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            if self._is_mariadb(raw):
                cursor.execute(f"SET SESSION max_statement_time = {max(0.001, timeout_s):.3f}")
            else:
                cursor.execute(f"SET SESSION max_execution_time = {max(1, int(timeout_s * 1000))}")
            cursor.execute("START TRANSACTION READ ONLY")
        finally:
            cursor.close()

    def cancel(self, raw: Any) -> None:
        import pymysql

        conn = raw.dbapi_connection
        killer = pymysql.connect(
            host=conn.host,
            port=conn.port,
            user=conn.user,
            password=conn.password,
            connect_timeout=5,
        )
        try:
            with killer.cursor() as cursor:
                cursor.execute(f"KILL QUERY {int(conn.thread_id())}")
        finally:
            killer.close()

    def is_timeout(self, exc: BaseException) -> bool:
        code = exc.args[0] if getattr(exc, "args", None) else None
        # 1969 MariaDB max_statement_time, 3024 MySQL max_execution_time, 1317 KILL QUERY
        return code in (1969, 3024, 1317)

    def session_read_only(self, raw: Any) -> bool:
        cursor = raw.cursor()
        try:
            for var in ("@@session.transaction_read_only", "@@session.tx_read_only"):
                try:
                    cursor.execute(f"SELECT {var}")
                    return bool(cursor.fetchone()[0])
                except Exception:  # the variable's name differs by version
                    continue
            return False
        finally:
            cursor.close()
            raw.rollback()


class _Watchdog:
    """Cancels the statement on the server when the caller cancels (and, while it watches,
    shortly after the deadline should the server's own time limit not have fired). Without a
    cancel event there is nothing to watch for: the server's limit alone applies and no
    thread is started."""

    GRACE_S = 2.0

    def __init__(
        self, driver: ReadOnlyDriver, raw: Any, timeout_s: float, cancel: threading.Event | None
    ) -> None:
        self.driver, self.raw, self.cancel = driver, raw, cancel
        self.deadline = time.monotonic() + timeout_s + self.GRACE_S
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> _Watchdog:
        if self.cancel is None:
            return self
        self.thread = threading.Thread(target=self._watch, name="sqlsage-watchdog", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()

    def _watch(self) -> None:
        step = 0.05
        while not self.done.wait(step):
            cancelled = self.cancel is not None and self.cancel.is_set()
            if cancelled or time.monotonic() > self.deadline:
                with contextlib.suppress(Exception):  # best effort; the server limit applies
                    self.driver.cancel(self.raw)
                return


_DRIVERS: dict[str, type[ReadOnlyDriver]] = {
    "sqlite": SqliteDriver,
    "postgresql": PostgresDriver,
    "mysql": MysqlDriver,
    "mariadb": MysqlDriver,
}


def driver_for(url: URL) -> ReadOnlyDriver:
    """The read-only driver for a URL's backend."""
    return _DRIVERS.get(url.get_backend_name(), ReadOnlyDriver)(url)


def sqlite_file_writable(path: str) -> bool:
    """Whether this process could write the SQLite file (it still opens it read-only)."""
    return os.access(path, os.W_OK)
