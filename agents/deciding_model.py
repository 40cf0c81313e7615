"""A chat model whose reply is computed rather than generated.

The builtin model, the tests' scripted model and the benchmarks' instant model are all this:
`decide(messages) -> AIMessage`. The LangChain plumbing lives here once: tools bind to the
model itself, and streaming yields the text word by word and the tool calls, intact, in a
last chunk (LangChain's own fakes drop tool calls when streaming). BaseChatModel reports each
streamed chunk to the callbacks itself, so nothing here calls on_llm_new_token.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable

NO_USAGE = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}


def message_chunks(message: AIMessage) -> Iterator[ChatGenerationChunk]:
    """The message as a stream: its text word by word, then one chunk with the tool calls,
    the response metadata and the usage."""
    for word in re.findall(r"\S+\s*", str(message.content)):
        yield ChatGenerationChunk(message=AIMessageChunk(content=word))
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
            response_metadata=dict(message.response_metadata),
            usage_metadata=message.usage_metadata or NO_USAGE,  # type: ignore[arg-type]
            chunk_position="last",
        )
    )


class DecidingChatModel(BaseChatModel):
    """Subclasses implement decide(); invoke, ainvoke, stream and astream all serve it."""

    def decide(self, messages: list[BaseMessage]) -> AIMessage:
        """The next message for this conversation."""
        raise NotImplementedError

    async def adecide(self, messages: list[BaseMessage]) -> AIMessage:
        """decide() from async code (a subclass may wait here, e.g. to play a slow model)."""
        return self.decide(messages)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, AIMessage]:
        """The reply decides its own tool calls; binding changes nothing."""
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.decide(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=await self.adecide(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from message_chunks(self.decide(messages))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in message_chunks(await self.adecide(messages)):
            yield chunk
