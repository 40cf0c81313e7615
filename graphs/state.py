"""The graph's state: the messages, the current turn, the latest result. Three channels on
purpose: every checkpoint stores each channel's version for every node, so fewer channels is
fewer bytes per step."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict, cast

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


class ResultRef(TypedDict):
    """A query result as the state keeps it: a reference to the full page (the rows the model
    saw are in the run_sql tool message; no need to store them twice)."""

    ref: str
    sql: str
    columns: list[dict[str, Any]]
    row_count: int
    truncated: bool


class Guards(TypedDict):
    """Per-turn counters behind the budgets."""

    tool_calls: int  # tool calls used (step budget)
    failures: int  # failed validate/run/argument attempts (repair budget)
    number_checks: int  # times the answer was sent back for figures not in the result


class Outcome(TypedDict, total=False):
    """How the turn ended."""

    answer: str
    status: str  # answered | refused | failed
    error: dict[str, Any] | None  # the last error model in this turn
    usage: dict[str, Any]  # input/output tokens, cost, model calls


class TurnRecord(Guards, Outcome):
    """Everything about the current turn in one channel (each channel costs version bytes in
    every checkpoint): what it is, its counters, and how it ended. Reset by each question."""

    number: int
    question: str
    db: str
    model: str


class Last(TypedDict, total=False):
    """The latest SQL, result and chart: kept across turns for follow-ups."""

    sql: str | None
    result: ResultRef | None
    chart: dict[str, Any] | None  # type and fields (the spec goes out as an event)


class State(TypedDict, total=False):
    """One session's memory: the conversation, the current turn, the latest result."""

    messages: Annotated[list[AnyMessage], add_messages]
    turn: TurnRecord
    last: Last


def guards(state: State) -> Guards:
    """This turn's counters (zeros before the first tool call)."""
    turn: dict[str, Any] = dict(state.get("turn") or {})
    return Guards(
        tool_calls=int(turn.get("tool_calls", 0)),
        failures=int(turn.get("failures", 0)),
        number_checks=int(turn.get("number_checks", 0)),
    )


def outcome(state: State) -> Outcome:
    """This turn's outcome so far (a copy)."""
    turn: dict[str, Any] = dict(state.get("turn") or {})
    return cast(Outcome, {k: turn[k] for k in ("answer", "status", "error", "usage") if k in turn})


def turn_update(state: State, *parts: Any) -> dict[str, Any]:
    """A state update that replaces the turn record with these changes applied."""
    merged: dict[str, Any] = dict(state.get("turn") or {})
    for part in parts:
        merged.update(part)
    return {"turn": merged}


def last(state: State) -> Last:
    """The latest SQL/result/chart (a copy)."""
    return Last(**(state.get("last") or {}))


def question_of(state: State) -> str:
    """This turn's question."""
    turn = state.get("turn")
    return turn["question"] if turn else ""


def fresh_turn(number: int, question: str, db: str, model: str) -> dict[str, Any]:
    """The input that starts a turn: the question, zeroed counters, an empty outcome."""
    from langchain_core.messages import HumanMessage

    record = TurnRecord(
        number=number, question=question, db=db, model=model, tool_calls=0, failures=0,
        number_checks=0, answer="", status="", error=None, usage={},
    )  # fmt: skip
    return {"messages": [HumanMessage(question)], "turn": record}
