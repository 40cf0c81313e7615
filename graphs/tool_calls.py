"""Carry out one tool call from the model: parse its arguments, run the tool off the event loop,
keep the full result page outside the state, and say what happened in words the model can use.

A failure is never raised into the graph: it becomes the tool message's text (with the error's
hint), an `error` in the outcome, and counts against the turn's repair budget.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, field
from typing import Any

from agents.context import AgentContext, Services
from agents.previews import PREVIEW_ROWS, preview
from graphs.state import ResultRef, State
from graphs.state import last as last_of
from tools.build_chart import build_chart
from tools.errors import NOT_FOUND, ErrorInfo, SqlsageError
from tools.registry import (
    BUILD_CHART,
    RUN_SQL,
    VALIDATE_SQL,
    BuildChartArgs,
    RunSqlArgs,
    SchemaLookupArgs,
    SemanticSearchArgs,
    ValidateSqlArgs,
    tool_spec,
)
from tools.results import Column, QueryResult
from tools.run_sql import run_sql
from tools.schema_lookup import schema_lookup
from tools.semantic_search import semantic_search
from tools.validate_sql import validate_for

INLINE_CHART_ROWS = 50
# Failures of these tools mean the SQL (or its arguments) needs repair.
REPAIRABLE = {VALIDATE_SQL, RUN_SQL, BUILD_CHART}


@dataclass
class ToolOutcome:
    """What one tool call produced: text for the model, events for the faces."""

    content: str
    ok: bool = True
    error: ErrorInfo | None = None
    summary: str = ""
    artifact: Any = None  # structured result kept on the ToolMessage (e.g. search hits)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def failed(exc: SqlsageError, tool: str) -> ToolOutcome:
    """A tool error as the model should see it: what went wrong and what to do next."""
    again = "validate_sql or run_sql" if tool in (VALIDATE_SQL, RUN_SQL) else tool
    text = f"{exc.for_model()} Fix it and call {again} again, or answer that you cannot."
    return ToolOutcome(content=text, ok=False, error=exc.info(), summary=f"error: {exc.code}")


async def execute(call: dict[str, Any], state: State, ctx: AgentContext) -> ToolOutcome:
    """Run one tool call and describe the outcome."""
    name = call.get("name") or ""
    try:
        spec = tool_spec(name)
        args = spec.parse(call.get("args"))
        if ctx.services is None:
            raise SqlsageError(NOT_FOUND, "The graph was run without services.")
        services = ctx.services
        if isinstance(args, SemanticSearchArgs):
            return await _search(args, services, ctx)
        if isinstance(args, SchemaLookupArgs):
            return await _lookup(args, services, ctx)
        if isinstance(args, ValidateSqlArgs):
            return await _validate(args, services, ctx)
        if isinstance(args, RunSqlArgs):
            return await _run(args, services, ctx)
        if isinstance(args, BuildChartArgs):
            return await _chart(args, state, services, ctx)
        raise AssertionError(name)  # every registered tool is handled above
    except SqlsageError as exc:
        return failed(exc, name)


async def _search(args: SemanticSearchArgs, services: Services, ctx: AgentContext) -> ToolOutcome:
    resources = services.resources
    database = resources.database(ctx.db)
    found = await asyncio.to_thread(
        semantic_search, resources.index, database, args.question, k=args.k
    )
    content = found.context
    if ctx.context and found.context == ctx.context:
        # The model already has this context in its instructions; repeating it would cost
        # tokens on every later call and be stored again in every later checkpoint.
        content = (
            f"Same result as the schema context you were given (tables: "
            f"{', '.join(found.tables)}); use that."
        )
    return ToolOutcome(
        content=content,
        summary=f"{len(found.tables)} table(s): {', '.join(found.tables[:6])}",
    )


async def _lookup(args: SchemaLookupArgs, services: Services, ctx: AgentContext) -> ToolOutcome:
    database = services.resources.database(ctx.db)
    page = await asyncio.to_thread(
        schema_lookup, database, tables=args.tables, pattern=args.pattern, detail=args.detail
    )
    return ToolOutcome(
        content=page.text, summary=f"{len(page.tables)} of {page.total_tables} table(s)"
    )


async def _validate(args: ValidateSqlArgs, services: Services, ctx: AgentContext) -> ToolOutcome:
    database = services.resources.database(ctx.db)
    result = await asyncio.to_thread(validate_for, database, args.sql)
    event = {"sql": result.sql if result.valid else args.sql, "dialect": result.dialect}
    if not result.valid:
        first = result.errors[0]
        exc = SqlsageError(
            first.code, first.message, hint=first.hint, sql=args.sql, line=first.line, col=first.col
        )
        outcome = failed(exc, VALIDATE_SQL)
        outcome.events.append(("sql", {**event, "valid": False}))
        return outcome
    return ToolOutcome(
        content=f"Valid. Normalized SQL:\n{result.sql}",
        summary="valid",
        events=[("sql", {**event, "valid": True})],
    )


async def _run(args: RunSqlArgs, services: Services, ctx: AgentContext) -> ToolOutcome:
    database = services.resources.database(ctx.db)
    try:
        if services.run_query is None:
            result = await asyncio.to_thread(run_sql, database, args.sql)
        else:
            result = await services.run_query(
                database, args.sql, session_id=ctx.session_id, turn=ctx.turn
            )
    except SqlsageError as exc:
        outcome = failed(exc, RUN_SQL)
        outcome.events.append(
            ("sql", {"sql": args.sql, "dialect": database.dialect, "valid": False})
        )
        return outcome
    columns = [c.model_dump() for c in result.columns]
    ref = await services.results.aput(
        ctx.session_id,
        ctx.turn,
        sql=result.sql,
        columns=columns,
        rows=result.rows,
        row_count=result.row_count,
        truncated=result.truncated,
    )
    ctx.pages[ref] = result
    table = {
        "columns": columns,
        "rows": result.rows,
        "row_count": result.row_count,
        "truncated": result.truncated,
        "elapsed_ms": round(result.elapsed_ms, 2),
        "result_ref": ref,
    }
    if result.cached:
        table["cached"] = True
    more = "+" if result.truncated else ""
    cached = " (cached)" if result.cached else ""
    return ToolOutcome(
        content=preview(result, ref=ref),
        summary=f"{result.row_count}{more} row(s) in {result.elapsed_ms:.0f} ms{cached}",
        # The latest result, as the conversation keeps it (charts and follow-ups read it here).
        artifact=ResultRef(
            ref=ref,
            columns=columns,
            rows=result.rows[:PREVIEW_ROWS],
            row_count=result.row_count,
            truncated=result.truncated,
        ),
        events=[
            ("sql", {"sql": result.sql, "dialect": result.dialect, "valid": True}),
            ("table", table),
        ],
    )


async def _store(store: Any, method: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a result store's sync method: off the event loop when it does IO, inline when it
    is in memory (a thread hop costs more than a dict lookup)."""
    if getattr(store, "in_memory", False):
        return method(*args, **kwargs)
    return await asyncio.to_thread(method, *args, **kwargs)


async def _page(state: State, services: Services, ctx: AgentContext) -> QueryResult:
    """The latest result's full page: from this process, else from the results store."""
    kept = last_of(state)
    if not kept:
        raise SqlsageError(
            NOT_FOUND,
            "There is no query result to chart yet.",
            hint="Call run_sql first, then build_chart.",
        )
    page = ctx.pages.get(kept["ref"])
    if page is not None:
        return page
    stored = await _store(services.results, services.results.get, kept["ref"])
    return QueryResult(
        columns=[Column(**c) for c in stored.columns],
        rows=stored.rows,
        row_count=stored.row_count,
        truncated=stored.truncated,
        elapsed_ms=0.0,
        sql=stored.sql,
    )


async def _chart(
    args: BuildChartArgs, state: State, services: Services, ctx: AgentContext
) -> ToolOutcome:
    page = await _page(state, services, ctx)
    started = time.perf_counter()
    draw = functools.partial(
        build_chart,
        page,
        chart_type=args.chart_type,
        x=args.x,
        y=args.y,
        color=args.color,
        title=args.title,
    )
    # A small result charts in well under a millisecond: not worth a worker thread.
    chart = draw() if page.row_count <= INLINE_CHART_ROWS else await asyncio.to_thread(draw)
    fields = ", ".join(f"{k}={v}" for k, v in (("x", chart.x), ("y", chart.y)) if v)
    return ToolOutcome(
        content=f"Chart built: {chart.type} ({fields}). {chart.reason}",
        summary=f"{chart.type} chart in {(time.perf_counter() - started) * 1000:.0f} ms",
        events=[("chart", {"spec": chart.spec, "type": chart.type})],
    )
