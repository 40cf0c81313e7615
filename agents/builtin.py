"""The builtin model: offline, deterministic, no key. It drives the same graph with the same
tool calls an LLM would make: semantic_search, then run_sql with the SQL its planner wrote,
then build_chart when the result has something to plot, then a short answer from the rows.
When a question does not fit its planner it says so and suggests configuring a real model.
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import TYPE_CHECKING, Any, cast

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, ToolMessage
from pydantic import ConfigDict

from agents.builtin_answer import answer
from agents.builtin_plan import NoPlan, Planner, metrics_from
from agents.builtin_schema import SchemaView
from agents.builtin_sql import write_sql
from agents.deciding_model import DecidingChatModel
from agents.history import split_turns
from tools.registry import BUILD_CHART, RUN_SQL, SEMANTIC_SEARCH

if TYPE_CHECKING:
    from server.resources import Resources

CHART_ONLY = re.compile(
    r"\b(show|plot|draw|make|display|chart)\b.*\b(as|in|into)\s+an?\s+(line|bar|pie|scatter)\b"
)
FOLLOW_UP = re.compile(
    r"^(and|but|what about|how about|only|now|same|instead|also)\b|\binstead\b|\bonly for\b"
)
SUGGEST = (
    " The builtin model handles counts, totals, averages, rankings, filters on values and "
    "time ranges; for other questions set SQLSAGE_MODEL (e.g. openai/gpt-4o-mini) or pass "
    "--model."
)
_ids = itertools.count(1)


def _call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": f"builtin_{next(_ids)}", "type": "tool_call"}


class BuiltinChatModel(DecidingChatModel):
    """A rule-based chat model over one process's databases (see the module docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    planner_for: Any = None  # (database name) -> Planner

    @classmethod
    def for_resources(cls, resources: Resources) -> BuiltinChatModel:
        """The builtin model reading schemas, values and glossaries through resources."""
        cache: dict[str | None, Planner] = {}

        def cached(db: str | None) -> Planner:
            if db not in cache:
                cache[db] = planner_for(resources, db)
            return cache[db]

        return cls(planner_for=cached)

    @property
    def _llm_type(self) -> str:
        return "sqlsage-builtin"

    # ---- deciding the next step ---------------------------------------------------------
    def decide(self, messages: list[BaseMessage]) -> AIMessage:
        """The next message: a tool call, or the answer."""
        system = next((str(m.content) for m in messages if m.type == "system"), "")
        named = re.search(r"database '([^']+)'", system)
        database = named.group(1) if named else None
        turns = split_turns(cast(list[AnyMessage], [m for m in messages if m.type != "system"]))
        if not turns:
            return AIMessage("Ask me a question about the data.")
        turn = turns[-1]
        question = str(turn[0].content)
        earlier = [str(t[0].content) for t in turns[:-1]]
        tools = {m.name: m for m in turn if isinstance(m, ToolMessage)}
        last = turn[-1]
        q = question.lower()
        if isinstance(last, ToolMessage) and last.status == "error":
            return _refuse(f"The query failed: {str(last.content)[:300]}")
        if BUILD_CHART in tools:
            return self._answer(turn, question)
        if RUN_SQL in tools:
            return self._after_run(tools[RUN_SQL], question)
        if SEMANTIC_SEARCH in tools:
            return self._after_search(database, tools[SEMANTIC_SEARCH], question, earlier)
        if earlier and (m := CHART_ONLY.search(q)):
            return AIMessage("", tool_calls=[_call(BUILD_CHART, chart_type=m.group(3))])
        text = f"{earlier[-1]} {question}" if earlier and FOLLOW_UP.search(q) else question
        return AIMessage("", tool_calls=[_call(SEMANTIC_SEARCH, question=text, k=8)])

    def _after_search(
        self, database: str | None, found: ToolMessage, question: str, earlier: list[str]
    ) -> AIMessage:
        # Like an LLM, it reads what it was given: the database named in its instructions, the
        # tables in the order the search result shows them.
        planner = self.planner_for(database) if self.planner_for else None
        if planner is None:
            return _refuse("I have no schema to work with.")
        ranked = ranked_tables(str(found.content))
        text = question
        if earlier and FOLLOW_UP.search(question.lower()):
            text = f"{earlier[-1]} {re.sub(FOLLOW_UP, '', question.lower())}"
        try:
            plan = planner.plan(text, ranked)
            sql = write_sql(plan, planner.view, planner.dialect)
        except (NoPlan, ValueError) as exc:
            return _refuse(f"I could not map this question onto the database: {exc}")
        return AIMessage("", tool_calls=[_call(RUN_SQL, sql=sql)])

    def _after_run(self, ran: ToolMessage, question: str) -> AIMessage:
        data = ran.artifact or {}
        rows, columns = data.get("rows") or [], data.get("columns") or []
        chart = next(
            (c for c in ("line", "pie", "bar", "scatter") if c in question.lower()), "auto"
        )
        plottable = len(rows) > 1 and len(columns) >= 2
        numeric = any(c.get("type") in ("integer", "number") for c in columns)
        if plottable and numeric:
            return AIMessage("", tool_calls=[_call(BUILD_CHART, chart_type=chart)])
        return self._answer([ran], question)

    def _answer(self, turn: list[Any], question: str) -> AIMessage:
        ran = next(
            (m for m in reversed(turn) if isinstance(m, ToolMessage) and m.name == RUN_SQL), None
        )
        if ran is None:  # a chart of the previous result
            return AIMessage("Here is the previous result as the chart you asked for.")
        data = ran.artifact or {}
        names = [c["name"] for c in data.get("columns", [])]
        return AIMessage(
            answer(
                question,
                names,
                data.get("rows", []),
                data.get("row_count", 0),
                data.get("truncated", False),
            )
        )


def ranked_tables(search_text: str) -> list[str]:
    """Table names in the order a semantic_search result shows them (its CREATE TABLE
    rendering, or the short "same result ... (tables: a, b)" reply)."""
    if m := re.search(r"\(tables: ([^)]*)\)", search_text):
        return [t.strip() for t in m.group(1).split(",") if t.strip()]
    return re.findall(r"^CREATE (?:TABLE|VIEW) (\S+) \(", search_text, re.MULTILINE)


def _refuse(reason: str) -> AIMessage:
    sentence = reason.rstrip() if reason.rstrip().endswith((".", "!", "?")) else reason + "."
    return AIMessage(sentence + SUGGEST, response_metadata={"refused": True})


def planner_for(resources: Resources, db: str | None) -> Planner:
    """A planner over one database's schema, value index and glossary."""
    database = resources.database(db)
    view = SchemaView.from_catalog(database.catalog)
    values = [
        (d.table, d.column, d.value)
        for d in resources.index.documents(database)
        if d.kind == "value" and d.table in view.tables
    ]
    knowledge = resources.index.knowledge_for(database)[0]
    metrics = metrics_from(knowledge.glossary) if knowledge is not None else []
    metrics = [m for m in metrics if all(t in view.tables for t in m.tables)]
    return Planner(
        view=view,
        values=values,
        metrics=metrics,
        latest_of=functools.partial(_latest_date, database),
        dialect=database.dialect,
    )


def _latest_date(database: Any, table: str, column: str) -> str | None:
    """The newest value of one date column: what 'last year' and 'this quarter' count from.
    One query, when a question first needs it (a schema may have thousands of date columns)."""
    import sqlglot.expressions as exp

    from tools.run_sql import execute_read_only

    *schema, name = table.split(".")
    source = exp.table_(name, db=schema[0] if schema else None, quoted=True)
    query = exp.select(exp.Max(this=exp.column(column, quoted=True))).from_(source)
    try:
        result = execute_read_only(
            database, query.sql(dialect=database.dialect), max_rows=1, timeout_s=5
        )
    except Exception:
        return None
    value = result.rows[0][0] if result.rows else None
    return None if value is None else str(value)
