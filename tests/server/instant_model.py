"""A stateless scripted chat model for server tests: each reply is chosen from the conversation
(the n-th reply of a turn = the number of AI messages since its question), so one instance
serves any number of sessions and turns at once. Optionally slow, to test streams mid-turn."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agents.deciding_model import DecidingChatModel

SQL = "SELECT segment, COUNT(*) AS customers FROM customers GROUP BY segment ORDER BY segment"
_ids = itertools.count(1)


def _position(messages: list[BaseMessage]) -> int:
    count = 0
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, AIMessage):
            count += 1
    return count


def _reply(text: str, *calls: tuple[str, dict[str, Any]]) -> AIMessage:
    return AIMessage(
        content=text,
        tool_calls=[
            {"name": n, "args": a, "id": f"call_{next(_ids)}", "type": "tool_call"}
            for n, a in calls
        ],
        usage_metadata={"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
    )


class InstantModel(DecidingChatModel):
    """semantic_search, run_sql (customers per segment), build_chart, then an answer that
    cites its SQL and states no figures; a failed run_sql is answered by running the SQL again."""

    sql: str = SQL
    delay_s: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "instant-scripted"

    def decide(self, messages: list[BaseMessage]) -> AIMessage:
        """The reply due at this point of the turn."""
        n = _position(messages)
        last = messages[-1]
        if getattr(last, "status", None) == "error" and getattr(last, "name", None) == "run_sql":
            # Like a persistent LLM: try the SQL again (the graph's repair budget ends it).
            return _reply("", ("run_sql", {"sql": self.sql}))
        if n == 0:
            return _reply("", ("semantic_search", {"question": "customers per segment", "k": 4}))
        if n == 1:
            return _reply("", ("run_sql", {"sql": self.sql}))
        if n == 2:
            return _reply("", ("build_chart", {"chart_type": "bar"}))
        return _reply(f"Customers per segment are in the table. (SQL: {self.sql})")

    async def adecide(self, messages: list[BaseMessage]) -> AIMessage:
        """The same reply, after delay_s (a slow model)."""
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.decide(messages)
