"""Who and what the current request is about, for logs, the audit log and the cache switch.

Context variables follow the turn into the tasks and worker threads it starts (asyncio copies
the context), so the run_sql hook knows the user without threading it through the graph.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("sqlsage_request_id", default=None)
user_id: ContextVar[str | None] = ContextVar("sqlsage_user_id", default=None)
session_id: ContextVar[str | None] = ContextVar("sqlsage_session_id", default=None)
use_cache: ContextVar[bool] = ContextVar("sqlsage_use_cache", default=True)
