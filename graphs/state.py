"""The graph's state: messages plus the guards and the last result, kept small on purpose."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


class ResultRef(TypedDict):
    """A query result as the state keeps it: a reference to the full page and a preview."""

    ref: str
    sql: str
    columns: list[dict[str, Any]]
    preview: list[list[Any]]
    row_count: int
    truncated: bool


class State(TypedDict, total=False):
    """One session's memory. Per-turn counters are reset by each new question."""

    messages: Annotated[list[AnyMessage], add_messages]
    question: str
    turn: int
    db: str
    model: str  # the model string this turn runs with (what a resume continues with)
    tool_calls: int  # tool calls used in this turn (step budget)
    failures: int  # failed validate/run/argument attempts in this turn (repair budget)
    number_checks: int  # times the answer was sent back for figures not in the result
    sql: str | None  # the last SQL that ran (kept across turns for follow-ups)
    result: ResultRef | None  # the last result (kept across turns for follow-ups)
    chart: dict[str, Any] | None  # the last chart's type and fields (the spec goes out as an event)
    error: dict[str, Any] | None  # the last error model in this turn
    answer: str
    status: str  # answered | refused | failed
    usage: dict[str, Any]  # this turn's input/output tokens and cost
