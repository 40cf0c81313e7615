"""Result pages kept in this process only: for runs without a session catalog (benchmarks,
one-off evals). Same interface as memory.sessions.ResultStore."""

from __future__ import annotations

import threading
from typing import Any

from memory.results import StoredResult
from tools.errors import NOT_FOUND, SqlsageError


class InMemoryResults:
    """Result pages by ref, in a dict."""

    in_memory = True  # callers may skip the worker thread they use for stores that do IO

    def __init__(self) -> None:
        self._pages: dict[str, StoredResult] = {}
        self._counts: dict[tuple[str, int], int] = {}  # pages per (session, turn)
        self._lock = threading.Lock()

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
        """Keep a page; returns its ref '<session>:<turn>:<n>'."""
        with self._lock:
            n = self._counts[session_id, turn] = self._counts.get((session_id, turn), 0) + 1
            ref = f"{session_id}:{turn}:{n}"
            self._pages[ref] = StoredResult(
                ref, session_id, turn, sql, columns, rows, row_count, truncated
            )
        return ref

    async def aput(
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
        """put(), inline: a dict insert is cheaper than a worker thread."""
        return self.put(
            session_id,
            turn,
            sql=sql,
            columns=columns,
            rows=rows,
            row_count=row_count,
            truncated=truncated,
        )

    def forget(self, session_id: str) -> None:
        """Drop a finished session's pages (one store serves many one-turn sessions)."""
        prefix = f"{session_id}:"
        with self._lock:
            for ref in [r for r in self._pages if r.startswith(prefix)]:
                del self._pages[ref]
            for key in [k for k in self._counts if k[0] == session_id]:
                del self._counts[key]

    def get(self, ref: str, *, owner: str | None = None) -> StoredResult:
        """A page by ref; unknown refs are NOT_FOUND."""
        page = self._pages.get(ref)
        if page is None:
            raise SqlsageError(NOT_FOUND, f"No stored result '{ref}'.", hint="Run the query again.")
        return page
