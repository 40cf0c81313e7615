"""Conversation history: split into turns, bounded for the model, compacted in the state.

A turn starts at a user's HumanMessage. Messages sqlsage itself adds as "human" (the answer
check) carry the name `sqlsage`, so they never start a turn.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage, ToolMessage

from agents.prompts import EARLIER

OWN_NAME = "sqlsage"
HISTORY_TOKENS = 6000  # what earlier turns may take of the model's context (chars / 4)


def is_user_question(message: AnyMessage) -> bool:
    """A question the user asked (not one of our own nudges)."""
    return isinstance(message, HumanMessage) and message.name != OWN_NAME


def split_turns(messages: list[AnyMessage]) -> list[list[AnyMessage]]:
    """Messages grouped by turn, oldest first; anything before the first question is dropped."""
    turns: list[list[AnyMessage]] = []
    for message in messages:
        if is_user_question(message):
            turns.append([message])
        elif turns:
            turns[-1].append(message)
    return turns


def _tokens(message: AnyMessage) -> int:
    return len(str(message.content)) // 4 + 4


def _final_answer(turn: list[AnyMessage]) -> AIMessage | None:
    for message in reversed(turn):
        if isinstance(message, AIMessage) and not message.tool_calls and message.content:
            return message
    return None


def _sql_of(turn: list[AnyMessage]) -> str | None:
    for message in reversed(turn):
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                if call["name"] == "run_sql":
                    return str(call["args"].get("sql", ""))
    return None


def summarize(turn: list[AnyMessage]) -> str:
    """One line for an old turn: the question, the SQL it ran, the start of its answer."""
    question = " ".join(str(turn[0].content).split())[:200]
    line = f"- Q: {question}"
    sql = _sql_of(turn)
    if sql:
        line += f" | SQL: {' '.join(sql.split())[:300]}"
    answer = _final_answer(turn)
    if answer is not None:
        line += f" | A: {str(answer.content)[:200]}"
    return line


def for_model(messages: list[AnyMessage], budget: int = HISTORY_TOKENS) -> list[AnyMessage]:
    """What the model is sent: the current turn in full; earlier turns as question and answer
    while they fit the budget; the rest as a one-line-per-turn summary."""
    turns = split_turns(messages)
    if not turns:
        return list(messages)
    current, earlier = turns[-1], turns[:-1]
    kept: list[list[AnyMessage]] = []
    used = 0
    dropped: list[list[AnyMessage]] = []
    for turn in reversed(earlier):
        answer = _final_answer(turn)
        pair: list[AnyMessage] = [turn[0]] + ([answer] if answer is not None else [])
        cost = sum(_tokens(m) for m in pair)
        if dropped or used + cost > budget:
            dropped.append(turn)
            continue
        kept.append(pair)
        used += cost
    out: list[AnyMessage] = []
    if dropped:
        lines = "\n".join(summarize(t) for t in reversed(dropped))
        out.append(HumanMessage(EARLIER.format(lines=lines), name=OWN_NAME))
        out.append(AIMessage("Noted."))
    for pair in reversed(kept):
        out += pair
    return out + current


def latest_result(messages: list[AnyMessage] | list[Any]) -> ToolMessage | None:
    """The latest successful run_sql result in a conversation (its artifact is the result)."""
    for message in reversed(messages):
        if isinstance(message, ToolMessage) and message.name == "run_sql":
            artifact = message.artifact
            if message.status == "success" and isinstance(artifact, dict) and "ref" in artifact:
                return message
    return None


def compaction(messages: list[AnyMessage]) -> list[RemoveMessage]:
    """Removals that keep the state small: tool traffic of turns before the previous one goes
    (the previous turn stays whole, so follow-ups can reuse its SQL and search results), except
    the latest successful run_sql result, which "chart that" may still need turns later."""
    kept = latest_result(messages)
    keep = {kept.id} if kept is not None else set()
    turns = split_turns(messages)
    removals: list[RemoveMessage] = []
    for turn in turns[:-2]:
        answer = _final_answer(turn)
        for message in turn[1:]:
            if message is answer or message.id is None or message.id in keep:
                continue
            if isinstance(message, ToolMessage | AIMessage | HumanMessage):
                removals.append(RemoveMessage(id=message.id))
    return removals
