"""Per-key token buckets: in-process by default, in Redis when SQLSAGE_REDIS_URL is set so
replicas share one bucket per key."""

from __future__ import annotations

import time
from typing import Any, Protocol

# KEYS[1] bucket; ARGV: rate per second, burst, now (seconds). Returns seconds to wait (0 = ok).
# Time comes from the caller so replicas agree without Redis TIME in scripts.
_REDIS_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""


class RateLimiter(Protocol):
    """Takes one token for a key; returns 0 when allowed, else seconds until one is free."""

    async def take(self, key: str) -> float: ...


class LocalBuckets:
    """Token buckets in this process."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    async def take(self, key: str) -> float:
        """One token, or the wait until one is free."""
        now = time.monotonic()
        tokens, ts = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - ts) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate


class RedisBuckets:
    """Token buckets in Redis, one hash per key, updated atomically by a Lua script."""

    def __init__(self, redis: Any, per_minute: float, burst: int, prefix: str = "sqlsage") -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self._script = redis.register_script(_REDIS_BUCKET)
        self._prefix = prefix

    async def take(self, key: str) -> float:
        """One token, or the wait until one is free."""
        wait = await self._script(
            keys=[f"{self._prefix}:rl:{key}"], args=[self.rate, self.burst, time.time()]
        )
        return float(wait)
