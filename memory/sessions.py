"""The session catalog and the stored query results, in one SQL database beside the checkpoints."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from memory.checkpointer import PG_CONNECT_TIMEOUT_S, SQLITE_BUSY_TIMEOUT_S, parse_checkpoint_url
from tools.databases import mask_url
from tools.errors import DATABASE_UNREACHABLE, INVALID_ARGUMENT, NOT_FOUND, SqlsageError

SQLITE_FILE = "sessions.sqlite"
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


class _Backend:
    """The engine both stores share, plus the in-process write lock SQLite wants."""

    def __init__(self, url: str | None, data_dir: Path) -> None:
        target = parse_checkpoint_url(url, data_dir=data_dir)
        self.lock: AbstractContextManager[Any] = nullcontext()
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
        with self.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_DDL_LOCK_KEY)))
            metadata.create_all(conn)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction, committed on success; a lost database becomes DATABASE_UNREACHABLE."""
        with self.lock:
            try:
                with self.engine.begin() as conn:
                    yield conn
            except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                raise self.unreachable(exc) from None

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


def _session(row: Any) -> SessionInfo:
    fields = dict(row._mapping)
    for name in ("created_at", "updated_at"):
        fields[name] = _utc(fields[name])
    return SessionInfo(**fields)


class SessionStore:
    """Sessions (owner, title, db, model, counters) in SQLite by default, PostgreSQL to scale out."""

    def __init__(self, url: str | None, *, data_dir: Path) -> None:
        self._backend = _Backend(url, data_dir)
        self._results = ResultStore(self._backend)

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

    def finish_turn(self, session_id: str, *, messages_added: int) -> None:
        """Add the turn's messages to the session's count."""
        if messages_added < 0:
            raise _invalid(
                f"messages_added is {messages_added}; it cannot be negative.",
                "Pass how many messages the turn appended (0 or more).",
            )
        count = sessions_table.c.message_count + messages_added
        self._update(session_id, None, message_count=count, updated_at=datetime.now(UTC))

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
        self._backend.engine.dispose()

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
        if turn < 1:
            raise _invalid(f"Turn {turn} is not valid.", "Turns count from 1.")
        table = results_table
        last_n = sa.select(sa.func.coalesce(sa.func.max(table.c.n), 0)).where(
            table.c.session_id == session_id, table.c.turn == turn
        )
        insert = table.insert().values(
            session_id=session_id,
            turn=turn,
            n=last_n.scalar_subquery() + 1,
            sql_text=sql,
            columns_json=json.dumps(columns, separators=(",", ":")),
            rows_json=json.dumps(rows, separators=(",", ":")),
            row_count=row_count,
            truncated=truncated,
            created_at=datetime.now(UTC),
        )
        with self._backend.begin() as conn:
            # Locking the session row serialises writers on PostgreSQL, so the next statement's
            # MAX(n) sees every committed result (SQLite runs each INSERT under its write lock).
            exists = conn.execute(
                sa.select(sessions_table.c.session_id)
                .where(sessions_table.c.session_id == session_id)
                .with_for_update()
            ).first()
            if exists is None:
                raise _not_found(session_id)
            n = conn.execute(insert.returning(table.c.n)).scalar_one()
        return f"{session_id}:{turn}:{n}"

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
