"""Per-run knobs the graph reads from LangGraph's runtime context, and the services it uses.

`Services` is built once by server/resources.py (or a test) and passed in; `AgentContext` is
made per turn. Defaults let LangGraph Studio run the module-level graph with no arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from server.resources import Resources
    from tools.databases import Database
    from tools.results import QueryResult

STEP_BUDGET = 12  # tool calls per turn
REPAIR_BUDGET = 3  # failed validate/run attempts per turn before giving up honestly
NUMBER_CHECKS = 1  # times a final answer with figures not in the result is sent back


class ResultSink(Protocol):
    """Where full result pages live, outside the checkpointed state (aput: put from a node,
    without blocking the event loop)."""

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
    ) -> str: ...

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
    ) -> str: ...

    def get(self, ref: str, *, owner: str | None = None) -> Any: ...


class QueryRunner(Protocol):
    """Runs one run_sql call of a turn. The default is tools.run_sql in a worker thread; the
    HTTP server passes one that adds its result cache and audit log."""

    async def __call__(
        self, database: Database, sql: str, *, session_id: str, turn: int
    ) -> QueryResult: ...


@dataclass
class Services:
    """Long-lived things one process shares across sessions."""

    resources: Resources
    results: ResultSink
    run_query: QueryRunner | None = None


@dataclass
class AgentContext:
    """One turn's settings: which database, which model, which session, which limits."""

    services: Services | None = None
    chat_model: BaseChatModel | None = None
    db: str | None = None
    model: str = "builtin"
    session_id: str = "studio"
    turn: int = 1
    step_budget: int = STEP_BUDGET
    repair_budget: int = REPAIR_BUDGET
    # Full pages handed back by run_sql in this process, by result_ref (build_chart's input).
    pages: dict[str, QueryResult] = field(default_factory=dict)
    # This turn's retrieved schema context and tool-bound model: per run, never checkpointed.
    context: str | None = None
    bound_model: Any = None
