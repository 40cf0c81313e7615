"""The session catalog and the stored query results, in one SQL database beside the checkpoints."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from memory import turn_sql
from memory.results import ResultStore, StoredResult
from memory.session_db import (
    LIST_MAX,
    SESSION_ID,
    TITLE_AUTO,
    TITLE_MAX,
    _Backend,
    _invalid,
    _match,
    _not_found,
    _utc,
    results_table,
    sessions_table,
)
from tools.errors import INVALID_ARGUMENT, NOT_FOUND, SqlsageError

__all__ = ["ResultStore", "SessionInfo", "SessionStore", "StoredResult", "title_from_question"]


@dataclass(frozen=True)
class SessionInfo:
    """One conversation: who owns it, its title, defaults, and how far it has got."""

    session_id: str
    owner: str
    title: str
    db: str | None
    model: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    turns: int


def title_from_question(question: str, limit: int = TITLE_AUTO) -> str:
    """The question on one line, cut at a word boundary to `limit` chars with an ellipsis."""
    text = " ".join(question.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    head = cut if text[limit - 1] == " " else cut.rsplit(" ", 1)[0]
    # One very long word (a URL, an identifier) would leave almost nothing: cut inside it instead.
    if len(head) < limit // 2:
        head = cut
    return head.rstrip(" ,.;:!?-") + "…"


def _session(row: Any) -> SessionInfo:
    fields = dict(row._mapping)
    for name in ("created_at", "updated_at"):
        fields[name] = _utc(fields[name])
    return SessionInfo(**fields)


class SessionStore:
    """Sessions (owner, title, db, model, counters) in SQLite by default, PostgreSQL to scale out."""

    def __init__(self, url: str | None, *, data_dir: Path, pool: Any = None) -> None:
        """`pool`: an async psycopg pool on the same PostgreSQL database (the checkpointer's,
        see memory.checkpointer.pool_of) for the async methods a turn calls; without one they
        run the sync ones in a worker thread."""
        self._backend = _Backend(url, data_dir, pool)
        self._results = ResultStore(self._backend)

    @property
    def backend(self) -> _Backend:
        """The database engine (and SQLite write lock) the catalog uses; the server keeps its
        own tables (turn records, audit, event replay) in the same database."""
        return self._backend

    @property
    def results(self) -> ResultStore:
        """The result store over the same database."""
        return self._results

    def create(
        self,
        *,
        owner: str = "local",
        db: str | None = None,
        model: str | None = None,
        session_id: str | None = None,
    ) -> SessionInfo:
        """Start a session: a new random id unless one is given; untitled until its first question."""
        if session_id is None:
            session_id = uuid.uuid4().hex
        elif not SESSION_ID.match(session_id):
            raise _invalid(
                f"Session id '{session_id}' is not valid.",
                "Use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit.",
            )
        now = datetime.now(UTC)
        info = SessionInfo(session_id, owner, "", db, model, now, now, 0, 0)
        if not self._insert(info):
            raise _invalid(
                f"Session id '{session_id}' is already taken.",
                "Leave the id out to get a fresh one.",
            )
        return info

    def get(self, session_id: str, *, owner: str | None = None) -> SessionInfo:
        """The session, or NOT_FOUND when it is missing or belongs to another owner."""
        with self._backend.begin() as conn:
            row = conn.execute(
                sa.select(sessions_table).where(sessions_table.c.session_id == session_id)
            ).first()
        if row is None or (owner is not None and row.owner != owner):
            raise _not_found(session_id)
        return _session(row)

    def get_or_create(
        self,
        session_id: str,
        *,
        owner: str = "local",
        db: str | None = None,
        model: str | None = None,
    ) -> SessionInfo:
        """The owner's session under this id, created if no one has it yet."""
        try:
            return self.get(session_id, owner=owner)
        except SqlsageError as exc:
            if exc.code != NOT_FOUND:
                raise
        try:
            return self.create(owner=owner, db=db, model=model, session_id=session_id)
        except SqlsageError as exc:
            if exc.code != INVALID_ARGUMENT or not SESSION_ID.match(session_id):
                raise
        # Created meanwhile by a concurrent request, or held by another owner (then NOT_FOUND).
        return self.get(session_id, owner=owner)

    def start_turn(self, session_id: str, question: str) -> int:
        """Count a new turn atomically and return its 1-based number; titles an untitled session."""
        table = sessions_table
        title = sa.case((table.c.title == "", title_from_question(question)), else_=table.c.title)
        row = self._update(
            session_id, None, turns=table.c.turns + 1, title=title, updated_at=datetime.now(UTC)
        )
        return int(row.turns)

    def begin_turn(
        self,
        session_id: str,
        question: str,
        *,
        owner: str = "local",
        db: str | None = None,
        model: str | None = None,
    ) -> int:
        """get_or_create + start_turn in one statement (INSERT ... ON CONFLICT DO UPDATE ...
        RETURNING): the session exists afterwards, its turn counter is up by one, and the
        turn's number comes back. Another owner's id is NOT_FOUND. One round trip, not four."""
        stmt, params = self._begin_turn(session_id, question, owner, db, model)
        return self._turn_number(session_id, self._backend.scalar(stmt, params))

    async def abegin_turn(
        self,
        session_id: str,
        question: str,
        *,
        owner: str = "local",
        db: str | None = None,
        model: str | None = None,
    ) -> int:
        """begin_turn from async code (on PostgreSQL without a worker thread)."""
        stmt, params = self._begin_turn(session_id, question, owner, db, model)
        return self._turn_number(session_id, await self._backend.ascalar(stmt, params))

    def finish_turn(self, session_id: str, *, messages_added: int) -> None:
        """Add the turn's messages to the session's count."""
        params = self._finish_turn(session_id, messages_added)
        if self._backend.scalar(turn_sql.finish_turn(), params) is None:
            raise _not_found(session_id)

    async def afinish_turn(self, session_id: str, *, messages_added: int) -> None:
        """finish_turn from async code (on PostgreSQL without a worker thread)."""
        params = self._finish_turn(session_id, messages_added)
        if await self._backend.ascalar(turn_sql.finish_turn(), params) is None:
            raise _not_found(session_id)

    def _begin_turn(
        self, session_id: str, question: str, owner: str, db: str | None, model: str | None
    ) -> tuple[sa.Executable, dict[str, Any]]:
        if not SESSION_ID.match(session_id):
            raise _invalid(
                f"Session id '{session_id}' is not valid.",
                "Use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit.",
            )
        params = {"p_session_id": session_id, "p_owner": owner, "p_db": db, "p_model": model,
                  "p_title": title_from_question(question), "p_now": datetime.now(UTC)}  # fmt: skip
        return turn_sql.begin_turn(self._backend.engine.dialect.name), params

    @staticmethod
    def _turn_number(session_id: str, turns: Any) -> int:
        if turns is None:  # the id is another owner's
            raise _not_found(session_id)
        return int(turns)

    @staticmethod
    def _finish_turn(session_id: str, messages_added: int) -> dict[str, Any]:
        if messages_added < 0:
            raise _invalid(
                f"messages_added is {messages_added}; it cannot be negative.",
                "Pass how many messages the turn appended (0 or more).",
            )
        return {"p_session_id": session_id, "p_added": messages_added, "p_now": datetime.now(UTC)}

    def list(
        self, *, owner: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[SessionInfo]:
        """Sessions, most recently active first (one owner's when `owner` is given)."""
        if not 1 <= limit <= LIST_MAX or offset < 0:
            raise _invalid(
                f"limit={limit}, offset={offset} is out of range.",
                f"Use 1 <= limit <= {LIST_MAX} and offset >= 0.",
            )
        table = sessions_table
        query = sa.select(table).order_by(
            table.c.updated_at.desc(), table.c.created_at.desc(), table.c.session_id
        )
        if owner is not None:
            query = query.where(table.c.owner == owner)
        with self._backend.begin() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
        return [_session(row) for row in rows]

    def rename(self, session_id: str, title: str, *, owner: str | None = None) -> SessionInfo:
        """Set the title (1-200 chars after trimming); activity order is left alone."""
        clean = " ".join(title.split())
        if not clean or len(clean) > TITLE_MAX:
            raise _invalid(
                f"Title '{title[:80]}' is {'empty' if not clean else f'{len(clean)} chars long'}.",
                f"Use a title of 1 to {TITLE_MAX} characters.",
            )
        return _session(self._update(session_id, owner, title=clean))

    def delete(self, session_id: str, *, owner: str | None = None) -> None:
        """Delete the session and its stored results (its checkpoints: see delete_thread)."""
        with self._backend.begin() as conn:
            gone = conn.execute(
                sessions_table.delete()
                .where(*_match(session_id, owner))
                .returning(sessions_table.c.session_id)
            ).first()
            if gone is None:
                raise _not_found(session_id)
            conn.execute(results_table.delete().where(results_table.c.session_id == session_id))

    def close(self) -> None:
        """Close the database connections."""
        self._backend.close()

    def _update(self, session_id: str, owner: str | None, **values: Any) -> Any:
        # One UPDATE ... RETURNING: atomic on both backends, and tells a missing session apart.
        stmt = (
            sessions_table.update()
            .where(*_match(session_id, owner))
            .values(**values)
            .returning(*sessions_table.c)
        )
        with self._backend.begin() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise _not_found(session_id)
        return row

    def _insert(self, info: SessionInfo) -> bool:
        try:
            with self._backend.begin() as conn:
                conn.execute(sessions_table.insert().values(**asdict(info)))
        except sa.exc.IntegrityError:
            return False
        return True
