"""An instant scripted chat model for benchmarks (adapted from tests/graphs/scripted_model.py,
which benchmarks must not import).

Differences from the test model: the reply is chosen from the conversation, not from a shared
position, so one instance serves any number of sessions at once (reply n of a turn = the number
of AI messages since the turn's question); every tool call gets a fresh id; and the time spent in
the model's own code is added to a clock, so a benchmark can subtract it from wall time. The
LangChain plumbing (streaming with tool calls intact) is agents.deciding_model's.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import Field

from agents.deciding_model import DecidingChatModel

_ids = itertools.count(1)
Step = tuple[str, Sequence[tuple[str, dict[str, Any]]]]  # (text, [(tool name, args), ...])


@dataclass
class ModelClock:
    """Seconds spent inside the scripted model's own code, and how many replies it made."""

    seconds: float = 0.0
    calls: int = 0


def reply(text: str = "", calls: Sequence[tuple[str, dict[str, Any]]] = ()) -> AIMessage:
    """One model reply: text and/or tool calls, each call with a fresh id."""
    return AIMessage(
        content=text,
        tool_calls=[
            {"name": name, "args": dict(args), "id": f"call_{next(_ids)}", "type": "tool_call"}
            for name, args in calls
        ],
        usage_metadata={"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
    )


def position(messages: Sequence[BaseMessage]) -> int:
    """Which reply of the turn is due: AI messages after the last question."""
    count = 0
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, AIMessage):
            count += 1
    return count


class ScriptedChatModel(DecidingChatModel):
    """Replies steps[position(messages)]; raises past the end (a benchmark bug)."""

    steps: list[Any] = Field(default_factory=list)  # list[Step]
    clock: Any = Field(default_factory=ModelClock)

    @property
    def _llm_type(self) -> str:
        return "scripted-benchmark"

    def decide(self, messages: list[BaseMessage]) -> AIMessage:
        """The due step's reply; the time spent here goes on the clock."""
        started = time.perf_counter()
        n = position(messages)
        if n >= len(self.steps):
            raise RuntimeError(f"script has {len(self.steps)} steps; reply {n + 1} was asked for")
        text, calls = self.steps[n]
        message = reply(text, calls)
        self.clock.seconds += time.perf_counter() - started
        self.clock.calls += 1
        return message
