"""open_checkpointer(url): the agent's per-session memory, in a SQLite file or in PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tools.databases import mask_url
from tools.errors import DATABASE_UNREACHABLE, INVALID_CONFIG, SqlsageError

SQLITE_FILE = "checkpoints.sqlite"
# The lock wait a second process sees while this one writes; longer than any single checkpoint write.
SQLITE_BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 5
PG_POOL_MAX = 10
# Serialises setup() across replicas starting together: concurrent CREATE TABLE IF NOT EXISTS
# in PostgreSQL can still collide on the catalog and fail one of them.
PG_SETUP_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"sqlsage_checkpoint_setup").digest()[:8], "big", signed=True
)
URL_HINT = (
    "Set SQLSAGE_CHECKPOINT_URL to sqlite:///path/to/checkpoints.sqlite, "
    "postgresql://user:password@host:5432/db, or leave it unset for a SQLite file in the data dir "
    "('memory' keeps checkpoints in this process only)."
)
_POSTGRES_SCHEME = re.compile(r"^(?:postgres|postgresql)(?:\+psycopg)?://", re.I)


@dataclass(frozen=True)
class CheckpointTarget:
    """Where memory lives: a SQLite file path, a libpq URI for PostgreSQL, or this process."""

    kind: Literal["sqlite", "postgres", "memory"]
    location: str = ""


def parse_checkpoint_url(url: str | None, *, data_dir: Path) -> CheckpointTarget:
    """Classify a checkpoint URL (None/'' = SQLite in data_dir) or raise INVALID_CONFIG."""
    text = (url or "").strip()
    if not text:
        return CheckpointTarget("sqlite", str(Path(data_dir).expanduser() / SQLITE_FILE))
    if text == "memory":
        return CheckpointTarget("memory")
    if _POSTGRES_SCHEME.match(text):
        # psycopg takes libpq URIs, which spell the scheme postgresql:// with no driver suffix.
        return CheckpointTarget("postgres", _POSTGRES_SCHEME.sub("postgresql://", text, count=1))
    if text.lower().startswith("sqlite"):
        try:
            parsed = make_url(text)
        except (ArgumentError, ValueError):
            parsed = None
        if (
            parsed is not None
            and parsed.get_backend_name() == "sqlite"
            and parsed.database
            and parsed.database != ":memory:"
        ):
            return CheckpointTarget("sqlite", str(Path(parsed.database).expanduser()))
    raise SqlsageError(
        INVALID_CONFIG,
        f"Checkpoint URL '{mask_url(text)}' is not a SQLite file, PostgreSQL or 'memory' URL.",
        hint=URL_HINT,
    )


@asynccontextmanager
async def open_checkpointer(
    url: str | None, *, data_dir: Path
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open the checkpointer for `url`, with its tables created; closed on exit."""
    target = parse_checkpoint_url(url, data_dir=data_dir)
    if target.kind == "memory":
        yield InMemorySaver()
    elif target.kind == "sqlite":
        async with _sqlite_saver(Path(target.location)) as saver:
            yield saver
    else:
        async with _postgres_saver(target.location) as saver:
            yield saver


def pool_of(checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """The PostgreSQL connection pool of a checkpointer opened here, else None: the session
    catalog runs a turn's statements on it instead of a second pool (and a worker thread)."""
    from psycopg_pool import AsyncConnectionPool

    conn = getattr(checkpointer, "conn", None)
    return conn if isinstance(conn, AsyncConnectionPool) else None


async def delete_thread(checkpointer: BaseCheckpointSaver[Any], session_id: str) -> None:
    """Remove every checkpoint and pending write of a session (its thread)."""
    await checkpointer.adelete_thread(session_id)


@asynccontextmanager
async def _sqlite_saver(path: Path) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    import sqlite3

    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # AsyncSqliteSaver runs everything on this one connection behind an asyncio.Lock, so within
        # a process it is safe; `timeout` is SQLite's busy wait for locks held by other processes.
        conn = await aiosqlite.connect(str(path), timeout=SQLITE_BUSY_TIMEOUT_S)
    except (OSError, sqlite3.Error) as exc:
        raise _sqlite_unreachable(path, exc) from None
    try:
        try:
            # WAL lets another process read while this one writes, and write right after it.
            await conn.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL is still crash-safe for the database file (a power cut may lose
            # the last commits, never corrupt); FULL waits for the disk on every checkpoint.
            await conn.execute("PRAGMA synchronous=NORMAL")
            saver = AsyncSqliteSaver(conn)
            await saver.setup()
        except sqlite3.Error as exc:
            raise _sqlite_unreachable(path, exc) from None
        yield saver
    finally:
        await conn.close()


def _sqlite_unreachable(path: Path, exc: BaseException) -> SqlsageError:
    return SqlsageError(
        DATABASE_UNREACHABLE,
        f"Cannot open the checkpoint file '{path}': {exc}.",
        hint="Check that the folder is writable (SQLSAGE_DATA_DIR) or point "
        "SQLSAGE_CHECKPOINT_URL at another sqlite:///path.",
    )


@asynccontextmanager
async def _postgres_saver(conninfo: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    import psycopg
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import DictRow, dict_row
    from psycopg_pool import AsyncConnectionPool

    try:
        # A direct connection first: a pool would retry a dead server until its timeout and then
        # report only "couldn't get a connection", while this fails fast with libpq's reason.
        setup_conn = await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT_S
        )
    except psycopg.Error as exc:
        raise _pg_unreachable(conninfo, exc) from None
    # The same connection settings AsyncPostgresSaver.from_conn_string uses.
    pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] = AsyncConnectionPool(
        conninfo,
        open=False,
        min_size=1,
        max_size=PG_POOL_MAX,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )
    try:
        async with setup_conn:
            try:
                await pool.open(wait=True, timeout=PG_CONNECT_TIMEOUT_S * 2)
                saver = AsyncPostgresSaver(pool)
                await setup_conn.execute("SELECT pg_advisory_lock(%s)", (PG_SETUP_LOCK_KEY,))
                try:
                    await saver.setup()
                finally:
                    await setup_conn.execute("SELECT pg_advisory_unlock(%s)", (PG_SETUP_LOCK_KEY,))
            except psycopg.Error as exc:
                raise _pg_unreachable(conninfo, exc) from None
        yield saver
    finally:
        await pool.close()


def _pg_unreachable(conninfo: str, exc: BaseException) -> SqlsageError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SqlsageError(
        DATABASE_UNREACHABLE,
        f"Cannot use the checkpoint database '{mask_url(conninfo)}': {reason}",
        hint="Check that PostgreSQL is running and that host, port, user, password and database "
        "in SQLSAGE_CHECKPOINT_URL are right (the user needs CREATE on the database once).",
    )
