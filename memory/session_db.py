"""The one SQL database behind the session catalog and the results store: its tables and the
engine both share (SQLite file by default, PostgreSQL beside the checkpoints)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.compiler import SQLCompiler

from memory.checkpointer import PG_CONNECT_TIMEOUT_S, SQLITE_BUSY_TIMEOUT_S, parse_checkpoint_url
from tools.databases import mask_url
from tools.errors import DATABASE_UNREACHABLE, INVALID_ARGUMENT, NOT_FOUND, SqlsageError

SQLITE_FILE = "sessions.sqlite"
# Threads of the session database's own: its short transactions never queue behind the tools'
# long work (embeddings, queries, charts) in asyncio's default executor. SQLite takes one
# writer at a time anyway.
DB_THREADS = 4
T = TypeVar("T")
TITLE_MAX = 200
TITLE_AUTO = 60
LIST_MAX = 500
# Ids travel in URLs, SSE ids and result refs ("<session>:<turn>:<n>"), so no ':' or '/'.
SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Serialises CREATE TABLE across replicas starting together on one PostgreSQL database.
PG_DDL_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"sqlsage_sessions_ddl").digest()[:8], "big", signed=True
)
# Bounded digits keep a hand-typed ref from overflowing PostgreSQL's integer columns.
REF = re.compile(r"^(?P<session>[^:]+):(?P<turn>[1-9][0-9]{0,8}):(?P<n>[1-9][0-9]{0,8})$")
REF_HINT = "Refs look like '<session_id>:<turn>:<n>' and come from results of your sessions."
LIST_HINT = "List your sessions to see their ids; a question without a session id starts a new one."

metadata = sa.MetaData()
sessions_table = sa.Table(
    "sqlsage_sessions",
    metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("db", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("message_count", sa.Integer, nullable=False),
    sa.Column("turns", sa.Integer, nullable=False),
    sa.Index("ix_sqlsage_sessions_owner_updated", "owner", "updated_at"),
)
results_table = sa.Table(
    "sqlsage_results",
    metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("turn", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("sql_text", sa.Text, nullable=False),
    sa.Column("columns_json", sa.Text, nullable=False),
    sa.Column("rows_json", sa.Text, nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("truncated", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


class _Backend:
    """The engine both stores share, plus the in-process write lock SQLite wants; and, on
    PostgreSQL, an async connection pool (the checkpointer's) for the statements of a turn."""

    def __init__(self, url: str | None, data_dir: Path, pool: Any = None) -> None:
        target = parse_checkpoint_url(url, data_dir=data_dir)
        self.lock: AbstractContextManager[Any] = nullcontext()
        # A psycopg AsyncConnectionPool (autocommit connections), or None: async callers then
        # run the sync path in a worker thread.
        self.pool = pool if target.kind == "postgres" else None
        self._compiled: dict[int, Any] = {}  # id(statement) -> its compiled form
        # id(statement) -> (statement, compiled, [(bind name, bind processor)]) for SQLite;
        # the statement is kept so its id is never reused by another.
        self._sqlite_plans: dict[int, tuple[Any, Any, list[tuple[str, Any]]]] = {}
        self._threads = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="sqlsage-db")
        self._pending: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        if target.kind == "postgres":
            pg_url = make_url(target.location).set(drivername="postgresql+psycopg")
            self.label = mask_url(target.location)
            self.engine: Engine = sa.create_engine(
                pg_url, pool_pre_ping=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S}
            )
        else:
            # One writer at a time inside the process: threads queue on a lock instead of
            # spinning in SQLite's busy handler; busy_timeout still covers other processes.
            self.lock = threading.Lock()
            memory = target.kind == "memory"
            path = Path(data_dir).expanduser() / SQLITE_FILE
            self.label = "memory" if memory else str(path)
            try:
                if not memory:
                    path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self.unreachable(exc) from None
            # StaticPool: an in-memory database lives and dies with its single connection.
            self.engine = sa.create_engine(
                "sqlite://" if memory else f"sqlite:///{path}",
                poolclass=StaticPool if memory else None,
                connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
            )
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.create_tables(metadata)

    def create_tables(self, tables: sa.MetaData) -> None:
        """CREATE the missing tables of `tables` (idempotent; replicas starting together on one
        PostgreSQL database take turns on an advisory lock)."""
        with self.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_DDL_LOCK_KEY)))
            tables.create_all(conn)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction, committed on success; a lost database becomes DATABASE_UNREACHABLE."""
        with self.lock:
            try:
                with self.engine.begin() as conn:
                    yield conn
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                raise self.unreachable(exc) from None

    def scalar(
        self, stmt: sa.Executable, params: dict[str, Any], *, lock: sa.Executable | None = None
    ) -> Any:
        """The first column of the statement's first row (None without one), in a transaction;
        `lock` runs first in the same transaction."""
        with self.begin() as conn:
            if lock is not None:
                conn.execute(lock, params)
            return conn.execute(stmt, params).scalar()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a blocking function of this database's stores from async code, in the
        database's own threads (with the caller's context variables)."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def close(self) -> None:
        """Close the connections and the threads."""
        self.engine.dispose()
        self._threads.shutdown(wait=False)

    async def write(self, job: Callable[[Connection], T]) -> T:
        """Run a short write `job(conn)` from async code. On SQLite, jobs of concurrent callers
        share one transaction (group commit: SQLite commits one writer at a time, and a burst
        of turns starting at once would otherwise queue one commit each); each job runs in
        its own savepoint (a one-statement job needs none: SQLite undoes a failed statement
        on its own), so one failing job fails only its caller. Elsewhere: one transaction in
        the database's threads."""
        if self.pool is not None or self.engine.dialect.name != "sqlite":
            return await self.run(self._write_one, job)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((job, future))
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_pending())
        # Shielded: a caller that goes away must not cancel a batch other callers wait for.
        return cast(T, await asyncio.shield(future))

    def _write_one(self, job: Callable[[Connection], T]) -> T:
        with self.begin() as conn:
            return job(conn)

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                outcomes = await self.run(self._write_batch, [job for job, _ in batch])
            except BaseException as exc:  # the transaction itself failed: every caller hears it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _write_batch(self, jobs: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        with self.begin() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            # pysqlite opens a transaction only before DML; a savepoint opened outside one
            # *is* the transaction, and its RELEASE commits it: the batch would commit once
            # per job. One explicit BEGIN makes it one commit.
            if not driver.in_transaction:
                driver.execute("BEGIN")
            for job in jobs:
                try:
                    if isinstance(job, _Statement):
                        outcomes.append((True, job(conn)))
                        continue
                    with conn.begin_nested():
                        outcomes.append((True, job(conn)))
                except Exception as exc:  # this job's savepoint is rolled back, the rest stay
                    outcomes.append((False, exc))
        return outcomes

    async def ascalar(
        self, stmt: sa.Executable, params: dict[str, Any], *, lock: sa.Executable | None = None
    ) -> Any:
        """scalar() from async code. On the PostgreSQL pool: one statement on an autocommit
        connection (a transaction only with `lock`), no worker thread, no pre-ping (the pool
        is the checkpointer's, which the same turn uses anyway). A primary-key clash is raised
        as sqlalchemy's IntegrityError on both paths."""
        if self.pool is None:
            if lock is None and self.engine.dialect.name == "sqlite":
                return await self.write(self._statement(stmt, params))

            def job(conn: Connection) -> Any:
                if lock is not None:
                    conn.execute(lock, params)
                return conn.execute(stmt, params).scalar()

            return await self.write(job)
        import psycopg
        from psycopg.rows import tuple_row

        steps = [self._sql(s, params) for s in ((lock,) if lock is not None else ()) + (stmt,)]
        try:
            async with (
                self.pool.connection() as conn,
                conn.transaction() if lock is not None else nullcontext(),
                conn.cursor(row_factory=tuple_row) as cur,
            ):
                for sql, bound in steps:
                    await cur.execute(sql, bound)
                row = await cur.fetchone()
        except psycopg.IntegrityError as exc:
            raise sa.exc.IntegrityError(steps[-1][0], steps[-1][1], exc) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self.unreachable(exc) from None
        return row[0] if row else None

    def _sql(self, stmt: sa.Executable, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The statement's SQL for psycopg and its parameters (with the statement's own
        literals). Statements are built once (memory/turn_sql.py), so compiled once."""
        compiled = self._compiled.get(id(stmt))
        if compiled is None:
            clause = cast(sa.ClauseElement, stmt)
            compiled = self._compiled[id(stmt)] = clause.compile(dialect=self.engine.dialect)
        return compiled.string, dict(compiled.construct_params(params) or {})

    def _statement(self, stmt: sa.Executable, params: dict[str, Any]) -> _Statement:
        """The statement as SQLite runs it: its compiled text and positional arguments, bound
        values converted as SQLAlchemy would (datetimes to its text format). Compiled once per
        statement; run on the driver connection, without SQLAlchemy's per-execute work
        (the writer thread holds the GIL for it, which the event loop waits on)."""
        plan = self._sqlite_plans.get(id(stmt))
        if plan is None:
            dialect = self.engine.dialect
            compiled = cast(SQLCompiler, cast(sa.ClauseElement, stmt).compile(dialect=dialect))
            order = [
                (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in compiled.positiontup or ()
            ]
            plan = self._sqlite_plans[id(stmt)] = (stmt, compiled, order)
        _, compiled, order = plan
        values = compiled.construct_params(params) or {}
        args = tuple(p(values[n]) if p else values[n] for n, p in order)
        return _Statement(compiled.string, args, self)

    def unreachable(self, exc: BaseException) -> SqlsageError:
        """The error for a session database that cannot be opened or used."""
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return SqlsageError(
            DATABASE_UNREACHABLE,
            f"Cannot use the session database '{self.label}': "
            f"{reason[0] if reason else type(exc).__name__}",
            hint="Check SQLSAGE_CHECKPOINT_URL (PostgreSQL running, credentials right) or that "
            "SQLSAGE_DATA_DIR is writable.",
        )


class _Statement:
    """A one-statement write job for SQLite's group commit: atomic on its own, so it runs
    without a savepoint, straight on the driver connection. Returns the first column of the
    first row (None without one); driver errors come out as SQLAlchemy's (IntegrityError,
    ...), a lost database as DATABASE_UNREACHABLE."""

    __slots__ = ("args", "backend", "sql")

    def __init__(self, sql: str, args: tuple[Any, ...], backend: _Backend) -> None:
        self.sql, self.args, self.backend = sql, args, backend

    def __call__(self, conn: Connection) -> Any:
        """Run it in the batch's transaction."""
        driver = conn.connection.driver_connection
        assert driver is not None
        try:
            row = driver.execute(self.sql, self.args).fetchone()
        except sqlite3.Error as exc:
            wrapped = sa.exc.DBAPIError.instance(self.sql, self.args, exc, sqlite3.Error)
            if isinstance(wrapped, sa.exc.OperationalError | sa.exc.InterfaceError):
                raise self.backend.unreachable(wrapped) from None
            raise wrapped from None
        return row[0] if row else None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL: the HTTP server and a CLI can share the file, readers never block the writer.
    dbapi_conn.execute("PRAGMA journal_mode=WAL")
    dbapi_conn.execute("PRAGMA synchronous=NORMAL")


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _not_found(session_id: str) -> SqlsageError:
    return SqlsageError(NOT_FOUND, f"Session '{session_id}' not found.", hint=LIST_HINT)


def _no_result(ref: str) -> SqlsageError:
    return SqlsageError(NOT_FOUND, f"Result '{ref}' not found.", hint=REF_HINT)


def _invalid(message: str, hint: str) -> SqlsageError:
    return SqlsageError(INVALID_ARGUMENT, message, hint=hint)


def _match(session_id: str, owner: str | None) -> list[sa.ColumnElement[bool]]:
    clauses = [sessions_table.c.session_id == session_id]
    if owner is not None:
        clauses.append(sessions_table.c.owner == owner)
    return clauses
