"""One model reply, streamed by its caller: each chunk is handed on as it arrives, and the whole
reply comes back as ainvoke would return it.

The agent node streams the reply itself (its text becomes `token` and `reasoning` events)
rather than leaving that to LangGraph's `messages` stream mode, which hooks a callback handler
into every node run and streams every message the nodes return (tool results, tool-call
replies without text) only for the faces to drop them: about 1.5 ms of a question's 10 ms of
framework time with an instant model. A `messages` stream (LangGraph Studio) still sees the
tokens: astream reports them to the run's callbacks like ainvoke does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.utils import message_chunk_to_message

from agents.llm_messages import apply_strict_tool_calls


def text_parts(chunk: BaseMessage) -> tuple[str, str]:
    """(answer text, reasoning text) carried by one streamed message chunk."""
    reasoning = str(chunk.additional_kwargs.get("reasoning_content") or "")
    content = chunk.content
    if isinstance(content, str):
        return content, reasoning
    text = []
    for block in content:
        if isinstance(block, str):
            text.append(block)
        elif isinstance(block, dict):
            kind = block.get("type")
            if kind == "text":
                text.append(str(block.get("text", "")))
            elif kind in ("thinking", "reasoning"):
                reasoning += str(block.get("thinking") or block.get("reasoning") or "")
    return "".join(text), reasoning


async def stream_reply(
    model: Any, messages: Sequence[BaseMessage], on_chunk: Callable[[BaseMessage], None]
) -> AIMessage:
    """The model's reply to `messages`, each chunk passed to on_chunk as it streams in."""
    chunks: list[Any] = []
    async for chunk in model.astream(messages):
        on_chunk(chunk)
        chunks.append(chunk)
    if not chunks:
        raise ValueError("The model streamed no reply.")
    whole = chunks[0]
    if len(chunks) > 1 and all(isinstance(c, AIMessageChunk) for c in chunks):
        whole = chunks[0] + chunks[1:]  # one merge, as LangChain's generate_from_stream does
    message = message_chunk_to_message(whole)
    if not isinstance(message, AIMessage):
        return AIMessage(content=str(getattr(message, "content", message)))
    # What LiteLLMChatModel.ainvoke does to its replies (a no-op for other models): tool calls
    # whose streamed arguments were not strict JSON become invalid_tool_calls.
    return apply_strict_tool_calls(message)
