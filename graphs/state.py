"""The graph's state is the conversation, and nothing else.

Everything a turn needs (its question, counters, outcome, the latest result) is read off the
messages: each checkpoint stores every changed channel and every channel's version for every
node, so one channel is the smallest checkpoint. What sqlsage adds to messages travels in
`response_metadata["sqlsage"]`, which chat-model adapters never send to a provider.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict, cast

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.graph.message import add_messages

from agents.history import OWN_NAME, is_user_question, latest_result
from agents.usage import add_usage

META = "sqlsage"


class State(TypedDict, total=False):
    """One session's memory: the conversation."""

    messages: Annotated[list[AnyMessage], add_messages]


class ResultRef(TypedDict):
    """The latest query result as the tool message keeps it (the full page is in the store)."""

    ref: str
    columns: list[dict[str, Any]]
    rows: list[list[Any]]  # the rows the model was shown
    row_count: int
    truncated: bool


class Guards(TypedDict):
    """Per-turn counters behind the budgets."""

    tool_calls: int  # tool calls run (step budget)
    failures: int  # failed validate/run/argument attempts (repair budget)
    number_checks: int  # times the answer was sent back for figures not in the result


class Outcome(TypedDict, total=False):
    """How the turn ended (so far)."""

    answer: str
    status: str  # answered | refused | failed ("" while running)
    error: dict[str, Any] | None  # the turn's last error model
    usage: dict[str, Any]  # input/output tokens, cost, model calls


def meta(message: BaseMessage) -> dict[str, Any]:
    """What sqlsage recorded on a message."""
    return cast(dict[str, Any], message.response_metadata.get(META) or {})


def current_turn(messages: list[AnyMessage] | list[BaseMessage]) -> list[BaseMessage]:
    """The messages from the last user question on."""
    for index in range(len(messages) - 1, -1, -1):
        if is_user_question(messages[index]):  # type: ignore[arg-type]
            return list(messages[index:])
    return []


def _turn(state: State) -> list[BaseMessage]:
    return current_turn(state.get("messages", []))


def turn_info(state: State) -> dict[str, Any]:
    """This turn's number (its place among the user's questions) and question."""
    messages = state.get("messages", [])
    turn = current_turn(messages)
    if not turn:
        return {}
    number = sum(1 for m in messages if is_user_question(m))
    return {"number": number, "question": str(turn[0].content)}


def question_of(state: State) -> str:
    """This turn's question."""
    turn = _turn(state)
    return str(turn[0].content) if turn else ""


def guards(state: State) -> Guards:
    """This turn's counters, counted off its messages (one pass back to the turn's question:
    the nodes and the router read them on every step)."""
    tool_calls = failures = number_checks = 0
    for message in reversed(state.get("messages", [])):
        if isinstance(message, ToolMessage):
            mark = meta(message)
            tool_calls += not mark.get("skipped")
            failures += bool(mark.get("failure"))
        elif isinstance(message, HumanMessage):
            if message.name != OWN_NAME:  # the turn's question
                return Guards(tool_calls=tool_calls, failures=failures, number_checks=number_checks)
            number_checks += 1
    return Guards(tool_calls=0, failures=0, number_checks=0)  # no question: no turn yet


def outcome_of(turn: list[BaseMessage]) -> Outcome:
    """A turn's outcome: the closing answer's status and error, the last tool error, usage."""
    usage: dict[str, Any] = {}
    error: dict[str, Any] | None = None
    done = Outcome(answer="", status="", error=None)
    for message in turn:
        if isinstance(message, ToolMessage) and meta(message).get("error"):
            error = meta(message)["error"]
        if isinstance(message, AIMessage):
            if not meta(message).get("ours"):  # a model's reply, not one sqlsage wrote
                usage = add_usage(usage, message)
            if "status" in meta(message):
                done = Outcome(
                    answer=str(message.content),
                    status=meta(message)["status"],
                    error=meta(message).get("error"),
                )
    if done.get("error") is None and done.get("status") != "answered":
        done["error"] = error
    done["usage"] = usage
    return done


def outcome(state: State) -> Outcome:
    """This turn's outcome so far."""
    return outcome_of(_turn(state))


def last(state: State) -> ResultRef | None:
    """The latest successful run_sql result in the conversation (for charts and follow-ups)."""
    message = latest_result(state.get("messages", []))
    return cast(ResultRef, message.artifact) if message is not None else None


def sql_of(messages: list[AnyMessage] | list[BaseMessage], result_ref: str) -> str | None:
    """The SQL the model sent for a result (its run_sql call's arguments): stored once, in
    the call, not again beside the result."""
    call_id = next(
        (
            m.tool_call_id
            for m in messages
            if isinstance(m, ToolMessage)
            and isinstance(m.artifact, dict)
            and m.artifact.get("ref") == result_ref
        ),
        None,
    )
    for message in messages:
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call["id"] == call_id:
                    return str(call["args"].get("sql", ""))
    return None


def fresh_turn(question: str) -> dict[str, Any]:
    """The input that starts a turn: the question. (Its number is its place among the user's
    questions; database and model are the run's context and the session catalog's.)"""
    return {"messages": [HumanMessage(question)]}
