"""The query-result cache: (database, validated SQL with its row cap) -> result, with a TTL.
In-process by default; in Redis when SQLSAGE_REDIS_URL is set, so replicas share hits."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any, Protocol

from tools.results import QueryResult

LOCAL_MAX_ENTRIES = 512


def cache_key(db: str, sql: str) -> str:
    """The key of a validated statement on a database (the SQL is sqlglot-normalized)."""
    return hashlib.sha256(f"{db}\x00{sql}".encode()).hexdigest()


class ResultCache(Protocol):
    """A TTL cache of query results."""

    async def get(self, key: str) -> QueryResult | None: ...

    async def set(self, key: str, result: QueryResult) -> None: ...


class LocalCache:
    """An LRU of results in this process, each kept `ttl_s` seconds."""

    def __init__(self, ttl_s: float, max_entries: int = LOCAL_MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[float, QueryResult]] = OrderedDict()

    async def get(self, key: str) -> QueryResult | None:
        """The cached result, or None when missing or expired."""
        item = self._items.get(key)
        if item is None:
            return None
        expires, result = item
        if expires < time.monotonic():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return result

    async def set(self, key: str, result: QueryResult) -> None:
        """Keep a result for ttl_s seconds."""
        self._items[key] = (time.monotonic() + self.ttl_s, result)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)


class RedisCache:
    """Results as JSON in Redis with SETEX."""

    def __init__(self, redis: Any, ttl_s: float, prefix: str = "sqlsage") -> None:
        self._redis = redis
        self.ttl_s = ttl_s
        self._prefix = prefix

    async def get(self, key: str) -> QueryResult | None:
        """The cached result, or None."""
        raw = await self._redis.get(f"{self._prefix}:qc:{key}")
        return None if raw is None else QueryResult.model_validate_json(raw)

    async def set(self, key: str, result: QueryResult) -> None:
        """Keep a result for ttl_s seconds (whole seconds, at least one)."""
        ttl = max(1, int(self.ttl_s))
        await self._redis.set(f"{self._prefix}:qc:{key}", result.model_dump_json(), ex=ttl)
