"""Query results kept per session and turn, outside the checkpointed state, so later requests
can page, chart or export them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from memory import turn_sql
from memory.session_db import (
    REF,
    _Backend,
    _invalid,
    _no_result,
    _not_found,
    results_table,
    sessions_table,
)


@dataclass(frozen=True)
class StoredResult:
    """A query result kept for later (paging, charts, export), addressed by its ref."""

    ref: str
    session_id: str
    turn: int
    sql: str
    columns: list[dict[str, Any]]
    rows: list[list[Any]]
    row_count: int
    truncated: bool


def _put_params(
    session_id: str,
    turn: int,
    sql: str,
    columns: list[dict[str, Any]],
    rows: list[list[Any]],
    row_count: int,
    truncated: bool,
) -> dict[str, Any]:
    if turn < 1:
        raise _invalid(f"Turn {turn} is not valid.", "Turns count from 1.")
    return {
        "p_session_id": session_id,
        "p_turn": turn,
        "p_sql": sql,
        "p_columns": json.dumps(columns, separators=(",", ":")),
        "p_rows": json.dumps(rows, separators=(",", ":")),
        "p_row_count": row_count,
        "p_truncated": truncated,
        "p_now": datetime.now(UTC),
    }


def _ref(session_id: str, turn: int, n: Any) -> str:
    if n is None:  # INSERT ... SELECT found no session row
        raise _not_found(session_id)
    return f"{session_id}:{turn}:{n}"


class ResultStore:
    """Query results kept per session and turn, so later requests can page, chart or export them."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    def put(
        self,
        session_id: str,
        turn: int,
        *,
        sql: str,
        columns: list[dict[str, Any]],
        rows: list[list[Any]],
        row_count: int,
        truncated: bool,
    ) -> str:
        """Store one result and return its ref '<session_id>:<turn>:<n>' (n counts within the turn)."""
        params = _put_params(session_id, turn, sql, columns, rows, row_count, truncated)
        stmt = turn_sql.put_result()
        try:
            n = self._backend.scalar(stmt, params)
        except sa.exc.IntegrityError:  # a concurrent put took this n: again, serialised
            n = self._backend.scalar(stmt, params, lock=turn_sql.lock_session())
        return _ref(session_id, turn, n)

    async def aput(
        self,
        session_id: str,
        turn: int,
        *,
        sql: str,
        columns: list[dict[str, Any]],
        rows: list[list[Any]],
        row_count: int,
        truncated: bool,
    ) -> str:
        """put() from async code (on PostgreSQL without a worker thread)."""
        params = _put_params(session_id, turn, sql, columns, rows, row_count, truncated)
        stmt = turn_sql.put_result()
        try:
            n = await self._backend.ascalar(stmt, params)
        except sa.exc.IntegrityError:  # a concurrent put took this n: again, serialised
            n = await self._backend.ascalar(stmt, params, lock=turn_sql.lock_session())
        return _ref(session_id, turn, n)

    def get(self, ref: str, *, owner: str | None = None) -> StoredResult:
        """The result under `ref`; NOT_FOUND when unknown, malformed or another owner's."""
        match = REF.match(ref)
        if match is None:
            raise _no_result(ref)
        session_id, turn, n = match["session"], int(match["turn"]), int(match["n"])
        query = sa.select(results_table, sessions_table.c.owner).join(
            sessions_table, sessions_table.c.session_id == results_table.c.session_id
        )
        query = query.where(
            results_table.c.session_id == session_id,
            results_table.c.turn == turn,
            results_table.c.n == n,
        )
        with self._backend.begin() as conn:
            row = conn.execute(query).first()
        if row is None or (owner is not None and row.owner != owner):
            raise _no_result(ref)
        return self._result(row)

    def for_turn(self, session_id: str, turn: int) -> list[StoredResult]:
        """The turn's results in the order they were stored."""
        query = (
            sa.select(results_table)
            .where(results_table.c.session_id == session_id, results_table.c.turn == turn)
            .order_by(results_table.c.n)
        )
        with self._backend.begin() as conn:
            rows = conn.execute(query).all()
        return [self._result(row) for row in rows]

    @staticmethod
    def _result(row: Any) -> StoredResult:
        return StoredResult(
            ref=f"{row.session_id}:{row.turn}:{row.n}",
            session_id=row.session_id,
            turn=row.turn,
            sql=row.sql_text,
            columns=json.loads(row.columns_json),
            rows=json.loads(row.rows_json),
            row_count=row.row_count,
            truncated=bool(row.truncated),
        )
