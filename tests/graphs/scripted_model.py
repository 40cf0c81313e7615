"""A scripted chat model: replays a fixed list of replies (text or tool calls), streams them
with their tool calls intact, and records what it was sent."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from pydantic import Field, PrivateAttr

from agents.deciding_model import DecidingChatModel

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


class ScriptedChatModel(DecidingChatModel):
    """Replays `script` in order; raises when it runs out (a test bug, not a model answer)."""

    script: list[Any] = Field(default_factory=list)  # AIMessage, or a callable(messages)->AIMessage
    delay_s: float = 0.0
    sent: list[list[BaseMessage]] = Field(default_factory=list)
    _position: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def decide(self, messages: list[BaseMessage]) -> AIMessage:
        """The next scripted reply (recording what the model was sent)."""
        self.sent.append(list(messages))
        if self._position >= len(self.script):
            raise RuntimeError(f"script exhausted after {self._position} replies")
        item = self.script[self._position]
        self._position += 1
        message = item(messages) if callable(item) else item
        return message.model_copy(update={"id": None})

    async def adecide(self, messages: list[BaseMessage]) -> AIMessage:
        """A slow model, when delay_s is set."""
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.decide(messages)
