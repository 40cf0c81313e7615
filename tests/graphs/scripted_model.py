"""A scripted chat model: replays a fixed list of replies (text or tool calls), streams them
with their tool calls intact, and records what it was sent. LangChain's own fakes can't
bind_tools and drop tool calls when streaming, hence this one."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import Field, PrivateAttr

_ids = itertools.count(1)


def call(name: str, **args: Any) -> dict[str, Any]:
    """One tool call for a script."""
    return {"name": name, "args": args, "id": f"call_{next(_ids)}", "type": "tool_call"}


def reply(text: str = "", *calls: dict[str, Any], **meta: Any) -> AIMessage:
    """One scripted model reply: text and/or tool calls."""
    return AIMessage(
        content=text,
        tool_calls=list(calls),
        usage_metadata={"input_tokens": 100, "output_tokens": 20, "total_tokens": 120},
        response_metadata=meta,
    )


class ScriptedChatModel(BaseChatModel):
    """Replays `script` in order; raises when it runs out (a test bug, not a model answer)."""

    script: list[Any] = Field(default_factory=list)  # AIMessage, or a callable(messages)->AIMessage
    delay_s: float = 0.0
    sent: list[list[BaseMessage]] = Field(default_factory=list)
    _position: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, AIMessage]:
        """Tools are accepted and ignored: the script decides the calls."""
        return self

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        self.sent.append(list(messages))
        if self._position >= len(self.script):
            raise RuntimeError(f"script exhausted after {self._position} replies")
        item = self.script[self._position]
        self._position += 1
        message = item(messages) if callable(item) else item
        return message.model_copy(update={"id": None})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._next(messages)
        yield from _chunks(message)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        message = self._next(messages)
        for chunk in _chunks(message):
            if run_manager is not None and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
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
                    "args": __import__("json").dumps(c["args"]),
                    "id": c["id"],
                    "index": i,
                    "type": "tool_call_chunk",
                }
                for i, c in enumerate(message.tool_calls)
            ],
            usage_metadata=message.usage_metadata,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )
    )
