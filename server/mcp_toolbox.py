"""The MCP faces' work, one method per tool: each a thin call into the same function the agent
uses, returning the typed result plus the compact text a model reads. No MCP types here
except the result blocks, so the methods are plain to test and to time."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from mcp_types import CallToolResult, ImageContent, TextContent

from server.mcp_models import (
    AskOutput,
    ChartOutput,
    DatabaseItem,
    DatabaseList,
    ExampleOutput,
    SchemaOutput,
    SearchOutput,
    ValidationOutput,
)
from server.mcp_render import bounded, result_text, short
from tools.errors import CANCELLED, SqlsageError

if TYPE_CHECKING:
    from graphs.events import Event
    from graphs.turns import TurnRunner
    from server.resources import Resources
    from tools.databases import Database

T = TypeVar("T")
Progress = Callable[[int, str], Awaitable[None]]


def _text(text: str) -> list[TextContent]:
    return [TextContent(type="text", text=text)]


def _result(text: str, structured: dict[str, Any], *extra: Any) -> CallToolResult:
    return CallToolResult(content=[*_text(text), *extra], structured_content=structured)


INLINE_BUDGET_S = 0.005  # run time of a query on the event loop before it moves to a thread
INLINE_SQL = 20_000  # longer statements go to the thread (their parse alone could take long)


class InlineBudget(threading.Event):
    """A cancel flag that sets itself INLINE_BUDGET_S after the query starts (the driver's
    progress handler asks it every few hundred thousand SQLite steps)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.deadline: float | None = None
        self.spent = False

    def is_set(self) -> bool:
        """False until the budget is spent (the clock starts at the first question)."""
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.seconds
        self.spent = self.spent or now > self.deadline
        return self.spent


class McpToolbox:
    """What the MCP server's tools run on: the shared resources and, for `ask`, a TurnRunner
    (the host's, or one opened here on the first question: stdio servers that never ask
    never import the agent). Given a `build` function instead of resources, it builds them on
    first use, so a stdio server answers `initialize` and `tools/list` before it has imported
    SQLAlchemy or opened a database."""

    def __init__(
        self,
        resources: Resources | None = None,
        *,
        runner: TurnRunner | None = None,
        build: Callable[[], Resources] | None = None,
        inline_sqlite: bool = False,
    ) -> None:
        if resources is None and build is None:
            raise ValueError("McpToolbox needs resources or a function that builds them")
        self._resources = resources
        self._build = build
        self._build_lock = threading.Lock()
        self.runner = runner
        # One client per process (stdio): SQLite queries start on the event loop (see run_sql).
        self.inline_sqlite = inline_sqlite
        self._own_runner: contextlib.AsyncExitStack | None = None
        self._runner_lock = asyncio.Lock()
        self._turns: set[asyncio.Task[Any]] = set()

    @property
    def resources(self) -> Resources:
        """The shared resources (built on first use when given a build function)."""
        if self._resources is None:
            with self._build_lock:
                if self._resources is None:
                    assert self._build is not None
                    self._resources = self._build()
        return self._resources

    @property
    def built(self) -> bool:
        """True once the resources exist (so closing them is needed)."""
        return self._resources is not None

    async def ready(self) -> None:
        """Build the resources (first call only) off the event loop."""
        if not self.built:
            await self.off_loop(lambda: self.resources)

    def database(self, name: str | None) -> Database:
        """A configured database by name (the default one when None)."""
        return self.resources.database(name or None)

    @staticmethod
    async def off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Blocking work (database, sqlglot, embeddings) in a worker thread, so a slow query
        never holds up the server's other calls."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    # -- the tools ----------------------------------------------------------------------------

    async def list_databases(self) -> CallToolResult:
        """The configured databases."""
        await self.ready()
        default = self.resources.settings.default_db()
        items = []
        for name in self.resources.databases.names():
            db = self.resources.databases.get(name)
            items.append(
                DatabaseItem(
                    name=name,
                    dialect=db.dialect,
                    description=db.config.description or "",
                    default=name == default,
                )
            )
        lines = [
            f"- {i.name} ({i.dialect}{', default' if i.default else ''}): {i.description}".rstrip(
                ": "
            )
            for i in items
        ]
        return _result("\n".join(lines), DatabaseList(databases=items).model_dump(mode="json"))

    async def schema_lookup(
        self,
        db: str | None,
        tables: list[str] | None,
        pattern: str | None,
        detail: str,
        limit: int,
        offset: int,
    ) -> CallToolResult:
        """A page of the schema: names, summary or full detail."""
        from tools.schema_lookup import schema_lookup

        await self.ready()
        database = self.database(db)
        page = await self.off_loop(
            schema_lookup,
            database,
            tables=tables,
            pattern=pattern,
            detail=detail,
            limit=limit,
            offset=offset,
        )
        head = (
            f"{database.name} ({database.dialect}): tables {offset + 1}-"
            f"{offset + len(page.tables)} of {page.total_tables}."
        )
        structured = SchemaOutput(**page.model_dump(exclude={"text"})).model_dump(mode="json")
        return _result(bounded(f"{head}\n{page.text}"), structured)

    async def semantic_search(self, db: str | None, question: str, k: int) -> CallToolResult:
        """Tables, columns, values, glossary terms and examples for a question."""
        from tools.semantic_search import semantic_search

        await self.ready()
        database = self.database(db)
        index = await self.off_loop(lambda: self.resources.index)
        found = await self.off_loop(semantic_search, index, database, question, k=k)
        structured = SearchOutput(**found.model_dump(exclude={"context"})).model_dump(mode="json")
        return _result(bounded(found.context), structured)

    async def validate_sql(
        self, db: str | None, sql: str, from_dialect: str | None
    ) -> CallToolResult:
        """Dry-run one statement: normalized SQL, or diagnostics."""
        from tools.validate_sql import validate_for

        await self.ready()
        database = self.database(db)
        if self._inline(database, sql):  # no query runs: a parse against a local schema
            result = validate_for(database, sql, from_dialect=from_dialect)
        else:
            result = await self.off_loop(validate_for, database, sql, from_dialect=from_dialect)
        if result.valid:
            limit = " (LIMIT added)" if result.limit_applied else ""
            text = f"Valid{limit}. Normalized SQL ({result.dialect}):\n{result.sql}"
        else:
            text = "Invalid:\n" + "\n".join(e.for_model() for e in result.errors)
        out = ValidationOutput(**result.model_dump())
        if not out.valid:
            # The caller sent this SQL: echo it only short, and not once per error.
            out.sql = short(sql)
            out.errors = [e.model_copy(update={"sql": None}) for e in out.errors]
        return _result(bounded(text), out.model_dump(mode="json"))

    async def run_sql(self, db: str | None, sql: str, max_rows: int | None) -> CallToolResult:
        """Validate and run one read-only query; rows capped at max_rows.

        On a server of its own (stdio: one client) a SQLite query starts on the event loop:
        SQLite answers most queries in microseconds, while the hop to a worker thread and
        back costs ~0.2 ms here. One that runs past INLINE_BUDGET_S is interrupted and run
        again in a worker thread with its full time limit, so a slow query holds the loop up
        for a few milliseconds at most. Servers shared by many clients (the mounted /mcp)
        always use the thread."""
        await self.ready()
        database = self.database(db)
        if self._inline(database, sql):
            budget = InlineBudget(INLINE_BUDGET_S)
            try:
                return self._run_sql(database, sql, max_rows, budget)
            except SqlsageError as error:
                if error.code != CANCELLED or not budget.spent:
                    raise
        return await self.off_loop(self._run_sql, database, sql, max_rows)

    def _inline(self, database: Database, sql: str) -> bool:
        """Whether this call may start on the event loop (see run_sql)."""
        return self.inline_sqlite and database.driver.kind == "sqlite" and len(sql) <= INLINE_SQL

    @staticmethod
    def _run_sql(
        database: Database, sql: str, max_rows: int | None, cancel: threading.Event | None = None
    ) -> CallToolResult:
        from tools.run_sql import run_sql

        result = run_sql(database, sql, max_rows=max_rows, cancel=cancel)
        structured = {
            "database": database.name,
            "sql": result.sql,
            "columns": [{"name": c.name, "type": c.type} for c in result.columns],
            "rows": result.rows,
            "row_count": result.row_count,
            "truncated": result.truncated,
            "elapsed_ms": result.elapsed_ms,
        }
        return _result(result_text(result, sql=result.sql), structured)

    async def build_chart(
        self,
        db: str | None,
        sql: str,
        chart_type: str,
        x: str | None,
        y: str | None,
        color: str | None,
        title: str | None,
    ) -> CallToolResult:
        """Run the query, chart its rows, render the chart as PNG."""
        from tools.build_chart import build_chart, render_png
        from tools.run_sql import run_sql

        await self.ready()
        database = self.database(db)

        def chart_it() -> CallToolResult:
            result = run_sql(database, sql)
            chart = build_chart(result, chart_type=chart_type, x=x, y=y, color=color, title=title)
            png = render_png(chart)
            structured = ChartOutput(
                database=database.name,
                sql=result.sql,
                type=chart.type,
                x=chart.x,
                y=chart.y,
                color=chart.color,
                reason=chart.reason,
                row_count=result.row_count,
                spec=chart.spec,
            ).model_dump(mode="json")
            axes = ", ".join(
                f"{k}={v}" for k, v in (("x", chart.x), ("y", chart.y), ("color", chart.color)) if v
            )
            text = (
                f"{chart.type} chart of {result.row_count} row(s){f' ({axes})' if axes else ''}: "
                f"{chart.reason} The image is attached; the Vega-Lite spec is in the structured "
                f"result.\nSQL: {result.sql}"
            )
            return _result(text, structured, _png(png))

        return await self.off_loop(chart_it)

    async def add_example(self, db: str | None, question: str, sql: str) -> CallToolResult:
        """Validate a question/SQL pair, append it to the knowledge file, re-index."""
        await self.ready()
        database = self.database(db)
        return await self.off_loop(self._add_example, database, question, sql)

    def _add_example(self, database: Database, question: str, sql: str) -> CallToolResult:
        from memory.knowledge import add_example
        from server.resources import knowledge_file

        path = knowledge_file(self.resources.settings, database.name, for_writing=True)
        example = add_example(path, question, sql, database)
        report = self.resources.index.build(database)
        out = ExampleOutput(
            database=database.name,
            question=example.question,
            sql=example.sql,
            knowledge_file=str(path),
            embedded=report.embedded,
        )
        text = (
            f"Saved as a verified example for {database.name} ({path.name}); semantic_search "
            f"now returns it for similar questions."
        )
        return _result(text, out.model_dump(mode="json"))

    # -- the agent ----------------------------------------------------------------------------

    async def ask(
        self,
        db: str | None,
        question: str,
        session_id: str | None,
        owner: str,
        progress: Progress,
    ) -> CallToolResult:
        """One turn of the whole agent; progress at each step. The turn runs in its own task:
        a client that goes away mid-turn does not cancel it, so it completes and is
        checkpointed (the session stays consistent for the next question)."""
        from graphs.turns import Turn

        await self.ready()
        database = self.database(db)
        runner = await self._runner()
        turn = Turn(question=question, session_id=session_id, db=database.name, owner=owner)
        events: list[Event] = []

        async def drive() -> None:
            step = 0
            async for event in runner.stream(turn):
                events.append(event)
                message = _progress_message(event)
                if message:
                    step += 1
                    with contextlib.suppress(Exception):  # the client may be gone
                        await progress(step, message)

        task = asyncio.create_task(drive())
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)
        await asyncio.shield(task)
        return await self.off_loop(_ask_result, events)

    async def _runner(self) -> TurnRunner:
        if self.runner is not None:
            return self.runner
        async with self._runner_lock:
            if self.runner is None:
                from server.agent_runtime import open_runner

                stack = contextlib.AsyncExitStack()
                self.runner = await stack.enter_async_context(open_runner(self.resources))
                self._own_runner = stack
        return self.runner

    async def aclose(self) -> None:
        """Let running turns finish (they are checkpointed), then close what was opened here."""
        if self._turns:
            await asyncio.wait(set(self._turns), timeout=30)
        if self._own_runner is not None:
            await self._own_runner.aclose()
            self._own_runner = None
            self.runner = None


def _progress_message(event: Event) -> str | None:
    data = event.data
    if event.event == "step" and data.get("status") == "end":
        summary = data.get("summary") or ""
        return f"{data.get('name')}: {summary}".strip(": ")
    if event.event == "step" and data.get("status") == "start" and data.get("name") == "agent":
        return "thinking"
    return None


def _ask_result(events: list[Event]) -> CallToolResult:
    from graphs.turns import collect
    from tools.results import QueryResult

    out = collect(events)
    answer = AskOutput.model_validate(
        {**out, "session_id": out["session_id"] or "", "turn": out["turn"] or 0}
    )
    parts = [answer.answer or "(no answer)"]
    if answer.sql:
        parts.append(f"SQL: {answer.sql}")
    table = next((e.data for e in reversed(events) if e.event == "table"), None)
    if table is not None:
        result = QueryResult(
            columns=answer.columns,
            rows=answer.rows,
            row_count=answer.row_count,
            truncated=answer.truncated,
            elapsed_ms=table.get("elapsed_ms") or 0.0,
        )
        parts.append(result_text(result))
    if answer.error:
        parts.append(answer.error.for_model())
    parts.append(f"session_id: {answer.session_id} (pass it to ask a follow-up)")
    image = _chart_image(answer.chart) if answer.chart else None
    blocks = [image] if image is not None else []
    return _result(bounded("\n".join(parts)), answer.model_dump(mode="json"), *blocks)


def _chart_image(spec: dict[str, Any]) -> ImageContent | None:
    from tools.build_chart import ChartSpec, render_png

    try:
        png = render_png(ChartSpec(type="table", spec=spec, reason=""))
    except SqlsageError:
        return None  # the spec is in the structured result; an image is a nicety
    return _png(png)


def _png(png: bytes) -> ImageContent:
    return ImageContent(
        type="image", data=base64.b64encode(png).decode("ascii"), mime_type="image/png"
    )


@contextlib.asynccontextmanager
async def open_toolbox(
    build: Callable[[], Resources], *, inline_sqlite: bool = False
) -> AsyncIterator[McpToolbox]:
    """A toolbox for a process of its own (stdio or HTTP), its resources built on first use;
    closes what it opened."""
    toolbox = McpToolbox(build=build, inline_sqlite=inline_sqlite)
    try:
        yield toolbox
    finally:
        await close_toolbox(toolbox)


async def close_toolbox(toolbox: McpToolbox) -> None:
    """Let its turns finish, then close what it opened (its resources, if they were built)."""
    await toolbox.aclose()
    if toolbox.built:
        toolbox.resources.close()
