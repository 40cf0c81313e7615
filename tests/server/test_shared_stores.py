"""The stores replicas share, each against its real backend: event buffers and turn leases (session
database on SQLite and PostgreSQL, and Redis), result caches and rate-limit buckets (in-process
and Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memory.server_stores import create_server_tables
from memory.session_db import _Backend
from server.event_buffer import RedisEventBuffer, RedisTurnLeases, SqlEventBuffer, SqlTurnLeases
from server.rate_limit import LocalBuckets, RedisBuckets
from server.result_cache import LocalCache, RedisCache, cache_key
from tests.service_dbs import HOST, PG_PORT, postgres_available, require_or_skip
from tools.results import Column, QueryResult

from .test_http_scale import REDIS_URL, redis_available

PG_URL = f"postgresql://postgres@{HOST}:{PG_PORT}/test"


def run(coro: Any) -> Any:
    """Run a coroutine on a fresh loop."""
    return asyncio.run(coro)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Backend]:
    """The session database's engine with the server's tables."""
    if request.param == "postgres":
        require_or_skip(postgres_available(), "PostgreSQL")
    built = _Backend(PG_URL if request.param == "postgres" else None, tmp_path)
    create_server_tables(built)
    yield built
    built.engine.dispose()


def redis_client() -> Any:
    """An asyncio Redis client on the test database (skips or fails when Redis is down)."""
    require_or_skip(redis_available(), "Redis", "127.0.0.1:6379")
    import redis.asyncio as aioredis

    return aioredis.from_url(REDIS_URL)


def event(session_id: str, turn: int, seq: int, kind: str = "step") -> dict[str, Any]:
    """A flat event."""
    return {"event": kind, "session_id": session_id, "turn": turn, "seq": seq, "name": f"s{seq}"}


async def check_buffer(buffer: Any) -> None:
    sid = uuid.uuid4().hex
    await buffer.append([event(sid, 1, 1, "session"), event(sid, 1, 2)])
    await buffer.append([event(sid, 1, 3), event(sid, 1, 4, "done")])
    await buffer.append([event(sid, 2, 1, "session")])
    assert [e["seq"] for e in await buffer.read(sid, 1, 0)] == [1, 2, 3, 4]
    assert [e["seq"] for e in await buffer.read(sid, 1, 2)] == [3, 4]
    assert await buffer.read(sid, 1, 4) == []
    assert [e["event"] for e in await buffer.read(sid, 2, 0)] == ["session"]
    assert await buffer.read("other", 1, 0) == []


def test_sql_event_buffer(backend: _Backend) -> None:
    run(check_buffer(SqlEventBuffer(backend, ttl_s=60)))


def test_sql_event_buffer_forgets_after_its_ttl(backend: _Backend) -> None:
    async def scenario() -> None:
        buffer = SqlEventBuffer(backend, ttl_s=0.2)
        await buffer.append([event("expiring", 1, 1)])
        assert len(await buffer.read("expiring", 1, 0)) == 1
        await asyncio.sleep(0.3)
        assert await buffer.read("expiring", 1, 0) == []

    run(scenario())


def test_redis_event_buffer() -> None:
    async def scenario() -> None:
        client = redis_client()
        try:
            buffer = RedisEventBuffer(client, ttl_s=60, prefix=f"t{uuid.uuid4().hex[:6]}")
            await check_buffer(buffer)
            key = buffer._key("k", 1)
            await buffer.append([event("k", 1, 1)])
            assert 0 < await client.ttl(key) <= 60
        finally:
            await client.aclose()

    run(scenario())


async def check_leases(make: Callable[[float], Any]) -> None:
    leases = make(0.5)
    sid = uuid.uuid4().hex
    assert await leases.acquire(sid, "a")
    assert not await leases.acquire(sid, "b")
    await leases.release(sid, "b")  # not the holder: nothing happens
    assert not await leases.acquire(sid, "b")
    await asyncio.sleep(0.3)
    await leases.renew(sid, "a")
    await asyncio.sleep(0.3)  # 0.6 s after acquiring: alive only thanks to the renewal
    assert not await leases.acquire(sid, "b")
    await asyncio.sleep(0.4)  # not renewed again: a dead holder's lease runs out
    assert await leases.acquire(sid, "b")
    await leases.release(sid, "b")
    assert await leases.acquire(sid, "c")


def test_sql_turn_leases(backend: _Backend) -> None:
    run(check_leases(lambda s: SqlTurnLeases(backend, lease_s=s)))


def test_redis_turn_leases() -> None:
    async def scenario() -> None:
        client = redis_client()
        prefix = f"t{uuid.uuid4().hex[:6]}"
        try:
            await check_leases(lambda s: RedisTurnLeases(client, lease_s=s, prefix=prefix))
        finally:
            await client.aclose()

    run(scenario())


def test_sql_leases_race_one_winner(backend: _Backend) -> None:
    async def scenario() -> list[bool]:
        leases = SqlTurnLeases(backend)
        sid = uuid.uuid4().hex
        return list(await asyncio.gather(*(leases.acquire(sid, f"h{i}") for i in range(12))))

    assert sorted(run(scenario())) == [False] * 11 + [True]


RESULT = QueryResult(
    columns=[Column(name="n", type="integer")],
    rows=[[1], [2]],
    row_count=2,
    truncated=False,
    elapsed_ms=3.0,
    sql="SELECT n FROM t LIMIT 1000",
    dialect="sqlite",
    database="sample",
)


async def check_cache(cache: Any) -> None:
    key = cache_key("sample", f"SELECT {uuid.uuid4().hex}")
    assert await cache.get(key) is None
    await cache.set(key, RESULT)
    assert await cache.get(key) == RESULT
    assert await cache.get(cache_key("other", "SELECT 1")) is None


def test_local_cache_ttl_and_bound() -> None:
    async def scenario() -> None:
        await check_cache(LocalCache(ttl_s=60))
        short = LocalCache(ttl_s=0.1, max_entries=2)
        for name in ("a", "b", "c"):
            await short.set(name, RESULT)
        assert await short.get("a") is None and await short.get("c") == RESULT  # LRU bound
        await asyncio.sleep(0.15)
        assert await short.get("c") is None  # expired

    run(scenario())


def test_redis_cache() -> None:
    async def scenario() -> None:
        client = redis_client()
        try:
            cache = RedisCache(client, ttl_s=60, prefix=f"t{uuid.uuid4().hex[:6]}")
            await check_cache(cache)
        finally:
            await client.aclose()

    run(scenario())


def test_cache_key_depends_on_database_and_sql() -> None:
    assert cache_key("a", "SELECT 1") != cache_key("b", "SELECT 1")
    assert cache_key("a", "SELECT 1") != cache_key("a", "SELECT 2")
    assert cache_key("a", "SELECT 1") == cache_key("a", "SELECT 1")


async def check_buckets(buckets: Any, key: str) -> None:
    waits = [await buckets.take(key) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0 < waits[3] <= 1.0  # 60/min: a token every second
    assert await buckets.take(key + "-other") == 0.0


def test_local_buckets() -> None:
    run(check_buckets(LocalBuckets(per_minute=60, burst=3), "k"))


def test_redis_buckets_are_shared_by_replicas() -> None:
    async def scenario() -> None:
        client = redis_client()
        prefix = f"t{uuid.uuid4().hex[:6]}"
        try:
            await check_buckets(RedisBuckets(client, per_minute=60, burst=3, prefix=prefix), "k")
            # Another replica's limiter sees the same bucket.
            other = RedisBuckets(client, per_minute=60, burst=3, prefix=prefix)
            assert await other.take("k") > 0
            started = time.monotonic()
            while await other.take("k2") == 0.0:
                assert time.monotonic() - started < 1
        finally:
            await client.aclose()

    run(scenario())
