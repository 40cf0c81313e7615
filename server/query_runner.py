"""The server's run_sql: validate, answer from the result cache when allowed, else run read-only;
every statement goes to the audit log and the metrics, hit or miss, success or failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from server import request_context
from server.result_cache import ResultCache, cache_key
from tools.databases import Database
from tools.errors import SqlsageError
from tools.results import QueryResult
from tools.run_sql import check_max_rows, check_timeout, run_validated, validated


class ServerQueryRunner:
    """Services.run_query for the HTTP server."""

    def __init__(
        self,
        *,
        cache: ResultCache | None,
        audit: Callable[[list[dict[str, Any]]], Awaitable[None]],
        on_cache: Callable[[bool], None] | None = None,
    ) -> None:
        self.cache = cache
        self._audit = audit
        self._on_cache = on_cache

    async def __call__(
        self, database: Database, sql: str, *, session_id: str, turn: int
    ) -> QueryResult:
        """Run one statement of a turn (cache first unless the request bypasses it)."""
        return await self.run(database, sql, session_id=session_id, turn=turn, source="turn")

    async def run(
        self,
        database: Database,
        sql: str,
        *,
        session_id: str | None,
        turn: int | None,
        source: str,
        max_rows: int | None = None,
        bypass_cache: bool = False,
    ) -> QueryResult:
        """Validate, look up the cache, run, audit. Exports pass a higher max_rows (not cached)."""
        entry: dict[str, Any] = {
            "user_id": request_context.user_id.get() or "local",
            "session_id": session_id,
            "turn": turn,
            "db": database.name,
            "sql_text": sql,
            "source": source,
        }
        started = time.perf_counter()
        try:
            result = await self._run(database, sql, max_rows, bypass_cache)
        except SqlsageError as exc:
            entry.update(outcome=exc.code, elapsed_ms=(time.perf_counter() - started) * 1000)
            await self._audit([entry])
            raise
        entry.update(
            sql_text=result.sql,
            row_count=result.row_count,
            elapsed_ms=result.elapsed_ms,
            outcome="cached" if result.cached else "ok",
        )
        await self._audit([entry])
        return result

    async def _run(
        self, database: Database, sql: str, max_rows: int | None, bypass_cache: bool
    ) -> QueryResult:
        # Exports pass the server's own cap, above the per-query one.
        cap = check_max_rows(database, None) if max_rows is None else max_rows
        timeout = check_timeout(database, None)
        cache = self.cache
        if max_rows is not None or bypass_cache or not request_context.use_cache.get():
            cache = None
        if cache is None:  # validate and run in one worker-thread hop
            return await asyncio.to_thread(self._validate_and_run, database, sql, cap, timeout)
        validation = await asyncio.to_thread(validated, database, sql, cap)
        # The validated SQL is sqlglot-normalized and carries the row cap: the cache key.
        key = cache_key(database.name, validation.sql)
        hit = await cache.get(key)
        if self._on_cache is not None:
            self._on_cache(hit is not None)
        if hit is not None:
            return hit.model_copy(update={"cached": True, "elapsed_ms": 0.0})
        result = await asyncio.to_thread(run_validated, database, validation, cap, timeout)
        await cache.set(key, result)
        return result

    @staticmethod
    def _validate_and_run(database: Database, sql: str, cap: int, timeout: float) -> QueryResult:
        return run_validated(database, validated(database, sql, cap), cap, timeout)
