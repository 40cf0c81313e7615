"""Translate between LangChain messages and litellm's OpenAI-shaped requests, responses and chunks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import InputTokenDetails, OutputTokenDetails, UsageMetadata
from langchain_core.messages.tool import (
    InvalidToolCall,
    ToolCall,
    invalid_tool_call,
    tool_call,
    tool_call_chunk,
)
from langchain_core.messages.utils import convert_to_openai_messages

from agents.litellm_import import litellm_module
from agents.llm_errors import InvalidResponse

# The key under which the last stream chunk carries the strict verdict on streamed tool calls.
STRICT_INVALID_KEY = "invalid_tool_calls"


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """OpenAI chat messages for litellm, keeping tool calls the model got wrong."""
    out: list[dict[str, Any]] = []
    for message in messages:
        converted = convert_to_openai_messages(message)
        if isinstance(message, AIMessage) and message.invalid_tool_calls:
            # LangChain drops invalid calls, which would orphan the ToolMessage that answers
            # them (a 400 from OpenAI). "{}" rather than the raw text: litellm json-parses the
            # arguments when translating history for Anthropic, Gemini and others.
            calls = converted.setdefault("tool_calls", [])
            calls.extend(
                {
                    "type": "function",
                    "id": bad.get("id"),
                    "function": {"name": bad.get("name") or "", "arguments": "{}"},
                }
                for bad in message.invalid_tool_calls
            )
        out.append(converted)
    return out


def parse_tool_calls(raw_calls: Sequence[Any]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """Split provider tool calls into valid ones (args: a JSON object) and invalid ones."""
    valid: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for raw in raw_calls:
        function = _get(raw, "function")
        name = _get(function, "name") or ""
        arguments = _get(function, "arguments") or ""
        call_id = _get(raw, "id")
        parsed, error = _strict_args(arguments)
        if error is None:
            valid.append(tool_call(name=name, args=parsed, id=call_id))
        else:
            invalid.append(invalid_tool_call(name=name, args=arguments, id=call_id, error=error))
    return valid, invalid


def message_from_response(response: Any, model: str) -> AIMessage:
    """An AIMessage from a non-streamed litellm ModelResponse."""
    choices = _get(response, "choices")
    message = _get(choices[0], "message") if choices else None
    if message is None:
        raise InvalidResponse("no choices in the response")
    tool_calls, invalid = parse_tool_calls(_get(message, "tool_calls") or [])
    reasoning = _get(message, "reasoning_content")
    usage = usage_metadata(_get(response, "usage"))
    return AIMessage(
        content=_get(message, "content") or "",
        tool_calls=tool_calls,
        invalid_tool_calls=invalid,
        additional_kwargs={"reasoning_content": reasoning} if reasoning else {},
        usage_metadata=usage,
        response_metadata=response_metadata(model, usage, _get(choices[0], "finish_reason")),
    )


@dataclass
class StreamState:
    """What a stream has said so far that only matters at its end."""

    usage: Any = None
    finish_reason: str | None = None
    names: dict[int, str] = field(default_factory=dict)
    ids: dict[int, str] = field(default_factory=dict)
    args: dict[int, str] = field(default_factory=dict)

    def chunk(self, raw: Any) -> AIMessageChunk | None:
        """The AIMessageChunk for one litellm stream chunk, or None if it carries nothing."""
        self.usage = _get(raw, "usage") or self.usage
        choices = _get(raw, "choices") or []
        delta = _get(choices[0], "delta") if choices else None
        if choices and _get(choices[0], "finish_reason"):
            self.finish_reason = _get(choices[0], "finish_reason")
        if delta is None:
            return None
        text = _get(delta, "content") or ""
        reasoning = _get(delta, "reasoning_content")
        calls = [self._call_chunk(raw_call) for raw_call in _get(delta, "tool_calls") or []]
        if not (text or reasoning or calls):
            return None
        return AIMessageChunk(
            content=text,
            tool_call_chunks=calls,
            additional_kwargs={"reasoning_content": reasoning} if reasoning else {},
        )

    def last_chunk(self, model: str) -> AIMessageChunk:
        """The closing chunk: usage, which model answered, cost, and the strict tool-call verdict."""
        usage = usage_metadata(self.usage)
        metadata = response_metadata(model, usage, self.finish_reason)
        # LangChain re-parses aggregated tool-call chunks leniently, so '{"sql": "SELECT' would
        # become a valid call; the strict verdict travels here and ainvoke applies it.
        invalid = [
            invalid_tool_call(name=self.names.get(i), args=text, id=self.ids.get(i), error=error)
            for i, text in sorted(self.args.items())
            if (error := _strict_args(text)[1]) is not None
        ]
        if invalid:
            metadata[STRICT_INVALID_KEY] = invalid
        return AIMessageChunk(
            content="", usage_metadata=usage, response_metadata=metadata, chunk_position="last"
        )

    def _call_chunk(self, raw: Any) -> Any:
        index = _get(raw, "index") or 0
        function = _get(raw, "function")
        name = _get(function, "name")
        fragment = _get(function, "arguments") or ""
        call_id = None
        if index not in self.ids:
            # Some OpenAI-compatible servers omit ids; ToolMessages need one to answer.
            call_id = self.ids[index] = _get(raw, "id") or f"call_{index}"
        # LangChain concatenates repeated names when merging chunks; send each name once.
        if name and index in self.names:
            name = None
        elif name:
            self.names[index] = name
        self.args[index] = self.args.get(index, "") + fragment
        return tool_call_chunk(name=name, args=fragment, id=call_id, index=index)


def apply_strict_tool_calls(message: AIMessage) -> AIMessage:
    """Move streamed tool calls whose arguments were not strict JSON into invalid_tool_calls."""
    bad: list[InvalidToolCall] = message.response_metadata.pop(STRICT_INVALID_KEY, None) or []
    if not bad:
        return message
    bad_ids = {b.get("id") for b in bad}
    message.tool_calls = [c for c in message.tool_calls if c.get("id") not in bad_ids]
    kept = [c for c in message.invalid_tool_calls if c.get("id") not in bad_ids]
    message.invalid_tool_calls = kept + bad
    return message


def usage_metadata(usage: Any) -> UsageMetadata:
    """LangChain usage from an OpenAI-style usage object (zeros when the provider sent none)."""
    prompt = int(_get(usage, "prompt_tokens") or 0)
    completion = int(_get(usage, "completion_tokens") or 0)
    result = UsageMetadata(
        input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion
    )
    cached = _get(_get(usage, "prompt_tokens_details"), "cached_tokens")
    reasoning = _get(_get(usage, "completion_tokens_details"), "reasoning_tokens")
    if cached:
        result["input_token_details"] = InputTokenDetails(cache_read=int(cached))
    if reasoning:
        result["output_token_details"] = OutputTokenDetails(reasoning=int(reasoning))
    return result


def response_metadata(model: str, usage: UsageMetadata, finish_reason: Any) -> dict[str, Any]:
    """Which model answered (after fallbacks), what it cost, and why it stopped."""
    return {
        "model": model,
        "model_name": model,  # the key LangChain's own usage callbacks read
        "cost_usd": cost_usd(model, usage),
        "finish_reason": finish_reason,
    }


def cost_usd(model: str, usage: UsageMetadata) -> float:
    """Dollar cost from litellm's local price map; 0.0 for models it does not price."""
    litellm = litellm_module()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model,
            prompt_tokens=usage["input_tokens"],
            completion_tokens=usage["output_tokens"],
        )
    except Exception:  # litellm raises for unmapped models (local servers, new releases)
        return 0.0
    return float(prompt_cost) + float(completion_cost)


def _strict_args(text: str) -> tuple[dict[str, Any], str | None]:
    """Parse tool arguments strictly: a JSON object, or "" for a tool without parameters."""
    if not text.strip():
        return {}, None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, f"Arguments are not valid JSON ({exc.msg} at char {exc.pos}): {text[:200]}"
    if not isinstance(value, dict):
        return {}, f"Arguments must be a JSON object, got {type(value).__name__}: {text[:200]}"
    return value, None


def _get(obj: Any, name: str) -> Any:
    """Read a field from litellm's pydantic objects or plain dicts alike."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)
