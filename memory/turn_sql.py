"""The statements a turn runs against the session database (count the turn, keep a result,
close the turn), built once per dialect with bind parameters.

Built once, they are compiled once: SQLAlchemy caches them for the sync engine, and
`_Backend.ascalar` runs the same compiled text on the async PostgreSQL pool, so the two paths
cannot drift apart. Each is one statement, atomic on its own: no transaction around it, so on
PostgreSQL one round trip each.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.dml import Insert, Update

from memory.session_db import results_table, sessions_table


def _param(name: str, type_: Any = None) -> sa.BindParameter[Any]:
    # Prefixed: a bind named like a column clashes with SQLAlchemy's own SET/VALUES binds.
    return sa.bindparam(f"p_{name}", type_=type_)


@functools.cache
def begin_turn(dialect: str) -> Insert:
    """INSERT ... ON CONFLICT DO UPDATE ... RETURNING turns: creates the session or counts one
    more turn on it (titling it if untitled); no row back when another owner holds the id.
    Parameters: p_session_id, p_owner, p_title, p_db, p_model, p_now."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    table = sessions_table
    now = _param("now", table.c.updated_at.type)
    stmt = insert(table).values(
        session_id=_param("session_id", table.c.session_id.type),
        owner=_param("owner", table.c.owner.type),
        title=_param("title", table.c.title.type),
        db=_param("db", table.c.db.type),
        model=_param("model", table.c.model.type),
        created_at=now,
        updated_at=now,
        message_count=0,
        turns=1,
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=[table.c.session_id],
        set_={
            "turns": table.c.turns + 1,
            "title": sa.case((table.c.title == "", stmt.excluded.title), else_=table.c.title),
            "model": sa.func.coalesce(stmt.excluded.model, table.c.model),
            "db": sa.func.coalesce(stmt.excluded.db, table.c.db),
            "updated_at": stmt.excluded.updated_at,
        },
        where=table.c.owner == stmt.excluded.owner,
    )
    return upsert.returning(table.c.turns)


@functools.cache
def finish_turn() -> Update:
    """Add p_added messages to session p_session_id's count, at p_now; returns its id (no row
    when the session is gone)."""
    table = sessions_table
    return (
        table.update()
        .where(table.c.session_id == _param("session_id", table.c.session_id.type))
        .values(
            message_count=table.c.message_count + _param("added", sa.Integer()),
            updated_at=_param("now", table.c.updated_at.type),
        )
        .returning(table.c.session_id)
    )


@functools.cache
def put_result() -> Insert:
    """Store a result as the next n of its session and turn, in one INSERT ... SELECT: no row
    is inserted (and none comes back) when the session does not exist; the session row is
    locked (PostgreSQL) so a concurrent delete waits. Two writers may still pick the same n
    (MAX(n) is read before the lock wait ends); the primary key refuses the second, which
    runs it again after lock_session() in one transaction (see ResultStore.put).
    Parameters: p_session_id, p_turn, p_sql, p_columns, p_rows, p_row_count, p_truncated,
    p_now. Returns n."""
    results, sessions = results_table, sessions_table
    session_id = _param("session_id", results.c.session_id.type)
    turn = _param("turn", results.c.turn.type)
    last_n = (
        sa.select(sa.func.coalesce(sa.func.max(results.c.n), 0) + 1)
        .where(results.c.session_id == session_id, results.c.turn == turn)
        .scalar_subquery()
    )
    row = sa.select(
        sessions.c.session_id,
        turn,
        last_n,
        _param("sql", results.c.sql_text.type),
        _param("columns", results.c.columns_json.type),
        _param("rows", results.c.rows_json.type),
        _param("row_count", results.c.row_count.type),
        _param("truncated", results.c.truncated.type),
        _param("now", results.c.created_at.type),
    ).where(sessions.c.session_id == session_id)
    columns = ["session_id", "turn", "n", "sql_text", "columns_json", "rows_json", "row_count",
               "truncated", "created_at"]  # fmt: skip
    return (
        results.insert()
        .from_select(columns, row.with_for_update(of=sessions))
        .returning(results.c.n)
    )


@functools.cache
def lock_session() -> sa.Select[Any]:
    """SELECT ... FOR UPDATE of session p_session_id: held first, it makes a following
    put_result() in the same transaction read MAX(n) after every earlier writer committed."""
    table = sessions_table
    return (
        sa.select(table.c.session_id)
        .where(table.c.session_id == _param("session_id", table.c.session_id.type))
        .with_for_update()
    )
