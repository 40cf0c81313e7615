"""Turn records, feedback and the audit log: the server's durable history in the session database.

All methods are synchronous (SQLAlchemy Core over the session database's engine); the HTTP
server calls them from worker threads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from memory.server_tables import audit_table, feedback_table, metadata, turns_table
from memory.session_db import _Backend, _utc

AUDIT_MAX = 1000


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def create_server_tables(backend: _Backend) -> None:
    """Create the server's tables if they are missing (idempotent, safe for racing replicas)."""
    backend.create_tables(metadata)


@dataclass(frozen=True)
class Usage:
    """What one user spent since a point in time."""

    turns: int
    tokens: int
    cost_usd: float


class TurnLog:
    """One record per finished turn: what was asked and answered, its SQL, table, chart, steps
    and usage. Feeds session history, traces, exports, feedback and budgets."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    def record(self, **fields: Any) -> None:
        """Store a finished turn (replacing a record of the same session and turn)."""
        row = {
            "session_id": fields["session_id"],
            "turn": fields["turn"],
            "owner": fields["owner"],
            "db": fields.get("db"),
            "model": fields.get("model"),
            "question": fields.get("question") or "",
            "answer": fields.get("answer") or "",
            "status": fields.get("status") or "failed",
            "sql_text": fields.get("sql"),
            "result_ref": fields.get("result_ref"),
            "table_json": _dumps(fields.get("table")),
            "chart_json": _dumps(fields.get("chart")),
            "error_json": _dumps(fields.get("error")),
            "steps_json": _dumps(fields.get("steps") or []),
            "input_tokens": int(fields.get("input_tokens") or 0),
            "output_tokens": int(fields.get("output_tokens") or 0),
            "cost_usd": float(fields.get("cost_usd") or 0.0),
            "elapsed_ms": float(fields.get("elapsed_ms") or 0.0),
            "created_at": datetime.now(UTC),
        }
        key = (turns_table.c.session_id == row["session_id"], turns_table.c.turn == row["turn"])
        with self._backend.begin() as conn:
            conn.execute(turns_table.delete().where(*key))
            conn.execute(turns_table.insert().values(**row))

    def for_session(self, session_id: str) -> list[dict[str, Any]]:
        """The session's turns in order."""
        query = (
            sa.select(turns_table)
            .where(turns_table.c.session_id == session_id)
            .order_by(turns_table.c.turn)
        )
        with self._backend.begin() as conn:
            return [self._turn(row) for row in conn.execute(query).all()]

    def get(self, session_id: str, turn: int) -> dict[str, Any] | None:
        """One turn's record, or None."""
        query = sa.select(turns_table).where(
            turns_table.c.session_id == session_id, turns_table.c.turn == turn
        )
        with self._backend.begin() as conn:
            row = conn.execute(query).first()
        return None if row is None else self._turn(row)

    def usage_since(self, owner: str, since: datetime) -> Usage:
        """Turns, model tokens and cost an owner's turns used since `since`."""
        t = turns_table
        query = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(t.c.input_tokens + t.c.output_tokens), 0),
            sa.func.coalesce(sa.func.sum(t.c.cost_usd), 0.0),
        ).where(t.c.owner == owner, t.c.created_at >= since)
        with self._backend.begin() as conn:
            turns, tokens, cost = conn.execute(query).one()
        return Usage(int(turns), int(tokens), float(cost))

    def delete_session(self, session_id: str) -> None:
        """Forget a deleted session's turns and feedback."""
        with self._backend.begin() as conn:
            conn.execute(turns_table.delete().where(turns_table.c.session_id == session_id))
            conn.execute(feedback_table.delete().where(feedback_table.c.session_id == session_id))

    @staticmethod
    def _turn(row: Any) -> dict[str, Any]:
        return {
            "session_id": row.session_id,
            "turn": row.turn,
            "owner": row.owner,
            "db": row.db,
            "model": row.model,
            "question": row.question,
            "answer": row.answer,
            "status": row.status,
            "sql": row.sql_text,
            "result_ref": row.result_ref,
            "table": _loads(row.table_json),
            "chart": _loads(row.chart_json),
            "error": _loads(row.error_json),
            "steps": _loads(row.steps_json) or [],
            "usage": {
                "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens,
                "cost_usd": row.cost_usd,
            },
            "elapsed_ms": row.elapsed_ms,
            "created_at": _utc(row.created_at).isoformat(),
        }


class FeedbackLog:
    """Thumbs up/down on answers; a thumbs-down waits here for review."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    def add(
        self,
        *,
        session_id: str,
        turn: int,
        owner: str,
        rating: str,
        comment: str | None,
        example_saved: bool,
    ) -> int:
        """Store one rating; returns its id."""
        values = {"session_id": session_id, "turn": turn, "owner": owner, "rating": rating,
                  "comment": comment, "example_saved": example_saved,
                  "created_at": datetime.now(UTC)}  # fmt: skip
        with self._backend.begin() as conn:
            new_id = conn.execute(
                feedback_table.insert().values(**values).returning(feedback_table.c.id)
            ).scalar_one()
        return int(new_id)

    def list(self, *, rating: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ratings first (optionally only 'up' or 'down')."""
        query = sa.select(feedback_table).order_by(feedback_table.c.id.desc()).limit(limit)
        if rating is not None:
            query = query.where(feedback_table.c.rating == rating)
        with self._backend.begin() as conn:
            rows = conn.execute(query).all()
        return [
            {**dict(row._mapping), "created_at": _utc(row.created_at).isoformat()} for row in rows
        ]


class AuditLog:
    """Every statement the server executed: who, where, what, how many rows, how long, outcome."""

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend

    def add(self, entries: list[dict[str, Any]]) -> None:
        """Append entries (keys: user_id, session_id, turn, db, sql_text, row_count, elapsed_ms,
        outcome, source; `at` defaults to now)."""
        if entries:
            with self._backend.begin() as conn:
                self.insert(conn, entries)

    @staticmethod
    def insert(conn: Connection, entries: list[dict[str, Any]]) -> None:
        """add() inside a transaction the caller holds (the server's group commit)."""
        now = datetime.now(UTC)
        rows = [{"at": now, "session_id": None, "turn": None, "row_count": None,
                 "elapsed_ms": None, **entry} for entry in entries]  # fmt: skip
        conn.execute(audit_table.insert(), rows)

    def query(
        self,
        *,
        user_id: str | None = None,
        db: str | None = None,
        session_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Entries, newest first, filtered by user, database, session and time."""
        a = audit_table
        query = sa.select(a).order_by(a.c.id.desc()).limit(min(limit, AUDIT_MAX)).offset(offset)
        if user_id is not None:
            query = query.where(a.c.user_id == user_id)
        if db is not None:
            query = query.where(a.c.db == db)
        if session_id is not None:
            query = query.where(a.c.session_id == session_id)
        if since is not None:
            query = query.where(a.c.at >= since)
        with self._backend.begin() as conn:
            rows = conn.execute(query).all()
        return [{**dict(row._mapping), "at": _utc(row.at).isoformat()} for row in rows]
