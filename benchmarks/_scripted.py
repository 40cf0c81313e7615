"""An instant scripted chat model for benchmarks (adapted from tests/graphs/scripted_model.py,
which benchmarks must not import).

Differences from the test model: the reply is chosen from the conversation, not from a shared
position, so one instance serves any number of sessions at once (reply n of a turn = the number
of AI messages since the turn's question); every tool call gets a fresh id; and the time spent in
the model's own code is added to a clock, so a benchmark can subtract it from wall time. It does
not call run_manager.on_llm_new_token itself: BaseChatModel's streaming path already does.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import Field

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


class ScriptedChatModel(BaseChatModel):
    """Replies steps[position(messages)]; raises past the end (a benchmark bug)."""

    steps: list[Any] = Field(default_factory=list)  # list[Step]
    clock: Any = Field(default_factory=ModelClock)

    @property
    def _llm_type(self) -> str:
        return "scripted-benchmark"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, AIMessage]:
        """Tools are accepted and ignored: the script decides the calls."""
        return self

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        n = position(messages)
        if n >= len(self.steps):
            raise RuntimeError(f"script has {len(self.steps)} steps; reply {n + 1} was asked for")
        text, calls = self.steps[n]
        return reply(text, calls)

    def _timed(self, make: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = make()
        self.clock.seconds += time.perf_counter() - started
        self.clock.calls += 1
        return value

    def _result(self, messages: list[BaseMessage]) -> ChatResult:
        return self._timed(
            lambda: ChatResult(generations=[ChatGeneration(message=self._reply(messages))])
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._result(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._result(messages)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self._timed(lambda: list(_chunks(self._reply(messages))))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._timed(lambda: list(_chunks(self._reply(messages)))):
            yield chunk


def _chunks(message: AIMessage) -> Iterator[ChatGenerationChunk]:
    """Text split into words, then the tool calls and usage in a last chunk."""
    text = str(message.content)
    words = text.split(" ") if text else []
    for i, word in enumerate(words):
        piece = word if i == len(words) - 1 else word + " "
        yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
    yield ChatGenerationChunk(
        message=AIMessageChunk(
            content="",
            tool_call_chunks=[
                {
                    "name": c["name"],
                    "args": json.dumps(c["args"]),
                    "id": c["id"],
                    "index": i,
                    "type": "tool_call_chunk",
                }
                for i, c in enumerate(message.tool_calls)
            ],
            usage_metadata=message.usage_metadata,
            chunk_position="last",
        )
    )
