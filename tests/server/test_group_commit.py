"""The session database's group commit on SQLite, as a burst of new chats uses it: concurrent
writes share one transaction, a one-statement job runs without a savepoint and fails alone, and
values are stored exactly as SQLAlchemy stores them."""

from __future__ import annotations

import asyncio
import functools
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from memory.server_stores import create_server_tables
from memory.server_tables import leases_table
from memory.session_db import sessions_table
from memory.sessions import SessionStore
from server.event_buffer import SqlTurnLeases


@pytest.fixture
def traced(tmp_path: Path) -> tuple[SessionStore, list[str]]:
    """The session catalog and server tables on SQLite; its connections log every statement."""
    sessions = SessionStore(None, data_dir=tmp_path)
    create_server_tables(sessions.backend)
    statements: list[str] = []
    sa.event.listen(
        sessions.backend.engine,
        "connect",
        lambda conn, _: conn.set_trace_callback(statements.append),
    )
    sessions.backend.engine.dispose()
    return sessions, statements


def test_a_burst_of_leases_and_turns_is_one_commit(traced: tuple[SessionStore, list[str]]) -> None:
    sessions, statements = traced
    backend = sessions.backend
    leases = SqlTurnLeases(backend)

    async def burst() -> tuple[list[bool], list[int]]:
        taken = asyncio.gather(*(leases.acquire(f"s{i}", "h") for i in range(50)))
        turns = asyncio.gather(*(sessions.abegin_turn(f"s{i}", "Q?") for i in range(50)))
        return list(await taken), list(await turns)

    taken, turns = asyncio.run(burst())
    assert taken == [True] * 50 and turns == [1] * 50
    kinds = [s.split()[0].upper() for s in statements]
    assert kinds.count("BEGIN") == kinds.count("COMMIT") <= 2  # one batch, or two at most
    assert "SAVEPOINT" not in kinds  # one statement each: no savepoints needed
    with backend.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(leases_table)).scalar() == 50


def test_a_failing_statement_fails_only_its_caller(traced: tuple[SessionStore, list[str]]) -> None:
    backend = traced[0].backend
    insert = leases_table.insert().values(
        session_id=sa.bindparam("p_id"), holder="h", expires_at=1.0
    )

    async def burst() -> list[Any]:
        await backend.ascalar(insert, {"p_id": "taken"})
        jobs = [backend.ascalar(insert, {"p_id": f"new{i}"}) for i in range(3)]
        jobs.insert(1, backend.ascalar(insert, {"p_id": "taken"}))  # primary key clash
        return list(await asyncio.gather(*jobs, return_exceptions=True))

    outcomes = asyncio.run(burst())
    assert isinstance(outcomes[1], sa.exc.IntegrityError)
    assert [o for i, o in enumerate(outcomes) if i != 1] == [None, None, None]
    with backend.begin() as conn:
        ids = conn.execute(sa.select(leases_table.c.session_id)).scalars().all()
    assert sorted(ids) == ["new0", "new1", "new2", "taken"]


def test_savepoint_jobs_in_the_same_batch_stay_atomic(
    traced: tuple[SessionStore, list[str]],
) -> None:
    backend = traced[0].backend
    leases = SqlTurnLeases(backend)

    def two_rows_then_fail(conn: sa.Connection) -> None:
        conn.execute(leases_table.insert().values(session_id="half", holder="h", expires_at=1.0))
        raise RuntimeError("after one of two rows")

    async def burst() -> list[Any]:
        return list(
            await asyncio.gather(
                leases.acquire("a", "h"),
                backend.write(functools.partial(two_rows_then_fail)),
                leases.acquire("b", "h"),
                return_exceptions=True,
            )
        )

    outcomes = asyncio.run(burst())
    assert outcomes[0] is True and outcomes[2] is True
    assert isinstance(outcomes[1], RuntimeError)
    with backend.begin() as conn:
        ids = conn.execute(sa.select(leases_table.c.session_id)).scalars().all()
    assert sorted(ids) == ["a", "b"]  # the failed job's row was rolled back, the others kept


def test_datetimes_are_stored_as_sqlalchemy_stores_them(
    traced: tuple[SessionStore, list[str]],
) -> None:
    sessions = traced[0]
    backend = sessions.backend
    before = datetime.now(UTC)
    assert asyncio.run(sessions.abegin_turn("fresh", "How many?", owner="ann")) == 1
    info = sessions.get("fresh", owner="ann")
    assert info.turns == 1 and before <= info.created_at <= datetime.now(UTC)
    with backend.begin() as conn:
        raw = conn.exec_driver_sql(
            f"SELECT created_at FROM {sessions_table.name} WHERE session_id = 'fresh'"
        ).scalar()
    # SQLAlchemy's SQLite text format (no "T", no offset), which its reads and sorts expect
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", raw), raw
