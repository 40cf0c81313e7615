"""Everything the HTTP app shares, opened together at start-up and closed at shutdown: the
resources, the agent runtime, the server's stores, Redis (when configured), cache, limits."""

from __future__ import annotations

import asyncio
import functools
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from graphs.turns import TurnRunner
from memory.server_stores import AuditLog, FeedbackLog, TurnLog, create_server_tables
from memory.sessions import SessionStore
from server.agent_runtime import open_runner
from server.auth import ApiKeys
from server.chat_service import ChatService
from server.event_buffer import RedisEventBuffer, RedisTurnLeases, SqlEventBuffer, SqlTurnLeases
from server.logs import get_logger
from server.metrics import Metrics
from server.query_runner import ServerQueryRunner
from server.rate_limit import LocalBuckets, RateLimiter, RedisBuckets
from server.resources import Resources, build_resources
from server.result_cache import LocalCache, RedisCache, ResultCache
from server.settings import Settings
from tools.errors import INVALID_CONFIG, SqlsageError

log = get_logger("app")


@dataclass
class AppState:
    """The app's shared objects (FastAPI's app.state.sqlsage)."""

    settings: Settings
    resources: Resources
    runner: TurnRunner
    sessions: SessionStore
    turn_log: TurnLog
    feedback: FeedbackLog
    audit: AuditLog
    chat: ChatService
    queries: ServerQueryRunner
    keys: ApiKeys
    limiter: RateLimiter
    metrics: Metrics
    redis: Any = None


async def open_redis(url: str) -> Any:
    """A Redis client that answered PING; a clear error otherwise."""
    import redis.asyncio as aioredis

    try:
        client = aioredis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
        await client.ping()
    except Exception as exc:
        raise SqlsageError(
            INVALID_CONFIG,
            f"Cannot use Redis at SQLSAGE_REDIS_URL: {type(exc).__name__}: {exc}",
            hint="Start Redis or fix SQLSAGE_REDIS_URL (e.g. redis://127.0.0.1:6379/0); "
            "unset it to keep cache, limits and replay in this process / the session database.",
        ) from None
    return client


def _warm_index(resources: Resources) -> None:
    try:
        resources.index.ensure(resources.database())
    except Exception:  # reported by /api/ready and by the first search instead
        log.warning("index warm-up failed", exc_info=True)
    # The index (Chroma's client, the embedding model, their modules) lives as long as the
    # process, like what start-up froze: out of the collector's sight too. Left in the oldest
    # generation, every full collection walked it, stalling the event loop ~100 ms each,
    # dozens of times in a few thousand chats.
    gc.freeze()


@asynccontextmanager
async def open_app_state(
    settings: Settings, *, model_factory: Callable[[str], Any] | None = None
) -> AsyncIterator[AppState]:
    """Open every shared resource for one server process; close them on exit."""
    keys = ApiKeys.from_settings(settings)
    resources = build_resources(settings)
    redis = await open_redis(settings.redis_url) if settings.redis_url else None
    metrics = Metrics()
    try:
        async with open_runner(resources, model_factory=model_factory) as runner:
            sessions: SessionStore = runner.sessions
            create_server_tables(sessions.backend)
            turn_log = TurnLog(sessions.backend)
            audit = AuditLog(sessions.backend)
            cache: ResultCache | None = None
            if settings.cache_ttl_s > 0:
                cache = (
                    RedisCache(redis, settings.cache_ttl_s)
                    if redis is not None
                    else LocalCache(settings.cache_ttl_s)
                )

            async def write_audit(entries: list[dict[str, Any]]) -> None:
                await sessions.backend.write(functools.partial(audit.insert, entries=entries))

            queries = ServerQueryRunner(
                cache=cache, audit=write_audit, on_cache=metrics.observe_cache
            )
            runner.services.run_query = queries
            if redis is not None:
                buffer: Any = RedisEventBuffer(redis, settings.event_replay_ttl_s)
                leases: Any = RedisTurnLeases(redis)
                limiter: RateLimiter = RedisBuckets(
                    redis, settings.rate_limit_per_minute, settings.rate_limit_burst
                )
            else:
                buffer = SqlEventBuffer(sessions.backend, settings.event_replay_ttl_s)
                leases = SqlTurnLeases(sessions.backend)
                limiter = LocalBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst)
            chat = ChatService(
                settings=settings,
                runner=runner,
                sessions=sessions,
                turn_log=turn_log,
                buffer=buffer,
                leases=leases,
                metrics=metrics,
            )
            state = AppState(
                settings=settings,
                resources=resources,
                runner=runner,
                sessions=sessions,
                turn_log=turn_log,
                feedback=FeedbackLog(sessions.backend),
                audit=audit,
                chat=chat,
                queries=queries,
                keys=keys,
                limiter=limiter,
                metrics=metrics,
                redis=redis,
            )
            # Load the embedding model and the default database's index now, off the event
            # loop, so the first question does not pay for it (health answers meanwhile).
            warm = asyncio.create_task(asyncio.to_thread(_warm_index, resources))
            try:
                yield state
            finally:
                await chat.shutdown()
                await asyncio.gather(warm, return_exceptions=True)
    finally:
        resources.close()
        if redis is not None:
            await redis.aclose()
