"""The graph's state: messages plus four small records, kept few and small on purpose: every
checkpoint stores each channel's version for every node, so fewer channels is fewer bytes."""

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


class TurnInfo(TypedDict):
    """What this turn is: its number, question, database and model string."""

    number: int
    question: str
    db: str
    model: str


class Guards(TypedDict):
    """Per-turn counters behind the budgets (reset by each new question)."""

    tool_calls: int  # tool calls used (step budget)
    failures: int  # failed validate/run/argument attempts (repair budget)
    number_checks: int  # times the answer was sent back for figures not in the result


class Outcome(TypedDict, total=False):
    """How the turn ended (reset by each new question)."""

    answer: str
    status: str  # answered | refused | failed
    error: dict[str, Any] | None  # the last error model in this turn
    usage: dict[str, Any]  # input/output tokens, cost, model calls


class Last(TypedDict, total=False):
    """The latest SQL, result and chart: kept across turns for follow-ups."""

    sql: str | None
    result: ResultRef | None
    chart: dict[str, Any] | None  # type and fields (the spec goes out as an event)


class State(TypedDict, total=False):
    """One session's memory."""

    messages: Annotated[list[AnyMessage], add_messages]
    turn: TurnInfo
    guards: Guards
    outcome: Outcome
    last: Last


def guards(state: State) -> Guards:
    """This turn's counters (zeros before the first tool call)."""
    return {"tool_calls": 0, "failures": 0, "number_checks": 0, **(state.get("guards") or {})}  # type: ignore[typeddict-item]


def outcome(state: State) -> Outcome:
    """This turn's outcome so far (a copy)."""
    return Outcome(**(state.get("outcome") or {}))


def last(state: State) -> Last:
    """The latest SQL/result/chart (a copy)."""
    return Last(**(state.get("last") or {}))


def question_of(state: State) -> str:
    """This turn's question."""
    turn = state.get("turn")
    return turn["question"] if turn else ""


def fresh_turn(number: int, question: str, db: str, model: str) -> dict[str, Any]:
    """The input that starts a turn: the question, zeroed guards, an empty outcome."""
    from langchain_core.messages import HumanMessage

    return {
        "messages": [HumanMessage(question)],
        "turn": TurnInfo(number=number, question=question, db=db, model=model),
        "guards": Guards(tool_calls=0, failures=0, number_checks=0),
        "outcome": Outcome(answer="", status="", error=None, usage={}),
    }
