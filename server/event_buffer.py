"""Where a turn's events wait for a reconnecting client, and who may run a session's next turn.

Both live in a store every replica sees: Redis when SQLSAGE_REDIS_URL is set, else the session
database. Events are kept `ttl_s` seconds; a lease stops two turns of one session interleaving
in its checkpoint, even when they arrive at two replicas.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from memory.server_tables import events_table, leases_table
from memory.session_db import _Backend

# A running turn renews its lease every LEASE_S / 3; one not renewed for LEASE_S belongs to a
# replica that died mid-turn, and the session may be continued elsewhere.
LEASE_S = 30.0


class EventBuffer(Protocol):
    """Turn events by (session, turn, seq), readable by any replica for ttl_s seconds."""

    async def append(self, events: list[dict[str, Any]]) -> None: ...

    async def read(self, session_id: str, turn: int, after_seq: int) -> list[dict[str, Any]]: ...


class TurnLeases(Protocol):
    """One running turn per session across replicas."""

    async def acquire(self, session_id: str, holder: str) -> bool: ...

    async def renew(self, session_id: str, holder: str) -> None: ...

    async def release(self, session_id: str, holder: str) -> None: ...

    async def held(self, session_id: str) -> bool: ...


class SqlEventBuffer:
    """The replay buffer in the session database."""

    def __init__(self, backend: _Backend, ttl_s: float) -> None:
        self._backend = backend
        self.ttl_s = ttl_s
        self._last_purge = 0.0

    async def append(self, events: list[dict[str, Any]]) -> None:
        """Store flat events (each with session_id, turn, seq, event); returns once written.
        Every running turn flushes every 50 ms: on SQLite the backend's group commit puts
        concurrent turns' batches in one transaction."""
        if events:
            await self._backend.write(functools.partial(self._insert, events=events))

    def _insert(self, conn: Connection, events: list[dict[str, Any]]) -> None:
        now = time.time()
        rows = [
            {
                "session_id": e["session_id"],
                "turn": e["turn"],
                "seq": e["seq"],
                "event": e["event"],
                "payload": json.dumps(e, separators=(",", ":"), default=str),
                "expires_at": now + self.ttl_s,
            }
            for e in events
        ]
        conn.execute(events_table.insert(), rows)
        if now - self._last_purge > 60:  # expired turns go at most once a minute
            self._last_purge = now
            conn.execute(events_table.delete().where(events_table.c.expires_at < now))

    async def read(self, session_id: str, turn: int, after_seq: int) -> list[dict[str, Any]]:
        """The turn's events after `after_seq`, in order (expired ones excluded)."""
        return await self._backend.run(self._read, session_id, turn, after_seq)

    def _read(self, session_id: str, turn: int, after_seq: int) -> list[dict[str, Any]]:
        t = events_table
        query = (
            sa.select(t.c.payload)
            .where(
                t.c.session_id == session_id,
                t.c.turn == turn,
                t.c.seq > after_seq,
                t.c.expires_at >= time.time(),
            )
            .order_by(t.c.seq)
        )
        with self._backend.begin() as conn:
            return [json.loads(p) for (p,) in conn.execute(query).all()]


@functools.cache
def _lease_statements(dialect: str) -> tuple[Any, Any, Any]:
    """acquire, renew and release as one statement each (built once per dialect): a lease is
    taken by INSERT ... ON CONFLICT DO UPDATE WHERE expired ... RETURNING, so no row comes
    back while another holder's lease runs."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    t = leases_table
    session_id, holder = (
        sa.bindparam("p_session_id", type_=t.c.session_id.type),
        sa.bindparam("p_holder", type_=t.c.holder.type),
    )
    until = sa.bindparam("p_until", type_=t.c.expires_at.type)
    stmt = insert(t).values(session_id=session_id, holder=holder, expires_at=until)
    acquire = stmt.on_conflict_do_update(
        index_elements=[t.c.session_id],
        set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
        where=t.c.expires_at < sa.bindparam("p_now", type_=t.c.expires_at.type),
    ).returning(t.c.holder)
    mine = (t.c.session_id == session_id, t.c.holder == holder)
    renew = t.update().where(*mine).values(expires_at=until).returning(t.c.session_id)
    release = t.delete().where(*mine).returning(t.c.session_id)
    return acquire, renew, release


class SqlTurnLeases:
    """Leases as rows keyed by session: insert wins, an expired lease may be taken over."""

    def __init__(self, backend: _Backend, lease_s: float = LEASE_S) -> None:
        self._backend = backend
        self.lease_s = lease_s
        self._acquire, self._renew, self._release = _lease_statements(backend.engine.dialect.name)

    async def acquire(self, session_id: str, holder: str) -> bool:
        """True when this holder now runs the session's turn."""
        now = time.time()
        params = {"p_session_id": session_id, "p_holder": holder, "p_now": now,
                  "p_until": now + self.lease_s}  # fmt: skip
        return await self._backend.ascalar(self._acquire, params) is not None

    async def renew(self, session_id: str, holder: str) -> None:
        """Extend the holder's lease by lease_s from now."""
        params = {"p_session_id": session_id, "p_holder": holder,
                  "p_until": time.time() + self.lease_s}  # fmt: skip
        await self._backend.ascalar(self._renew, params)

    async def release(self, session_id: str, holder: str) -> None:
        """Give the lease back (only the holder can)."""
        await self._backend.ascalar(self._release, {"p_session_id": session_id, "p_holder": holder})

    async def held(self, session_id: str) -> bool:
        """True while some replica runs a turn of the session (its lease has not run out)."""
        return await self._backend.run(self._held, session_id)

    def _held(self, session_id: str) -> bool:
        t = leases_table
        query = sa.select(t.c.holder).where(
            t.c.session_id == session_id, t.c.expires_at >= time.time()
        )
        with self._backend.begin() as conn:
            return conn.execute(query).first() is not None


class RedisEventBuffer:
    """The replay buffer as one Redis list per turn."""

    def __init__(self, redis: Any, ttl_s: float, prefix: str = "sqlsage") -> None:
        self._redis = redis
        self.ttl_s = ttl_s
        self._prefix = prefix

    def _key(self, session_id: str, turn: int) -> str:
        return f"{self._prefix}:ev:{session_id}:{turn}"

    async def append(self, events: list[dict[str, Any]]) -> None:
        """RPUSH the events and refresh the turn's expiry."""
        if not events:
            return
        key = self._key(events[0]["session_id"], events[0]["turn"])
        payloads = [json.dumps(e, separators=(",", ":"), default=str) for e in events]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, *payloads)
            pipe.expire(key, max(1, int(self.ttl_s)))
            await pipe.execute()

    async def read(self, session_id: str, turn: int, after_seq: int) -> list[dict[str, Any]]:
        """The events after `after_seq` (seq n sits at index n-1)."""
        raw = await self._redis.lrange(self._key(session_id, turn), after_seq, -1)
        return [json.loads(item) for item in raw]


class RedisTurnLeases:
    """Leases as SET NX PX keys."""

    _RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
    _RENEW = (
        "if redis.call('GET', KEYS[1]) == ARGV[1] then "
        "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
    )

    def __init__(self, redis: Any, lease_s: float = LEASE_S, prefix: str = "sqlsage") -> None:
        self._redis = redis
        self.lease_s = lease_s
        self._prefix = prefix
        self._release = redis.register_script(self._RELEASE)
        self._renew = redis.register_script(self._RENEW)

    async def acquire(self, session_id: str, holder: str) -> bool:
        """True when this holder now runs the session's turn."""
        key = f"{self._prefix}:lease:{session_id}"
        return bool(await self._redis.set(key, holder, nx=True, px=int(self.lease_s * 1000)))

    async def renew(self, session_id: str, holder: str) -> None:
        """Extend the holder's lease by lease_s from now."""
        key = f"{self._prefix}:lease:{session_id}"
        await self._renew(keys=[key], args=[holder, int(self.lease_s * 1000)])

    async def held(self, session_id: str) -> bool:
        """True while some replica runs a turn of the session (its lease has not run out)."""
        return bool(await self._redis.exists(f"{self._prefix}:lease:{session_id}"))

    async def release(self, session_id: str, holder: str) -> None:
        """Give the lease back (only the holder can)."""
        await self._release(keys=[f"{self._prefix}:lease:{session_id}"], args=[holder])
