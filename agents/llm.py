"""The model gateway: a LangChain chat model over litellm with retries, fallbacks, usage and cost.

`api_base` belongs to the primary model only. Fallbacks are full litellm model strings reached
the way litellm reaches them without one: the provider's default endpoint or its environment
variable (HOSTED_VLLM_API_BASE, OLLAMA_API_BASE, OPENAI_BASE_URL, ...). So a local server can
fall back to a hosted provider, and a second model on another server is one env var away.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from agents.litellm_import import litellm_module
from agents.llm_errors import Failure, InvalidResponse, classify, exhausted, mid_stream, retry_delay
from agents.llm_messages import (
    StreamState,
    apply_strict_tool_calls,
    message_from_response,
    to_openai_messages,
)
from agents.llm_spec import check_spec, key_variable, missing_keys, provider_of
from tools.errors import INVALID_CONFIG, SqlsageError

T = TypeVar("T")

# Local OpenAI-compatible servers ignore the key, but the OpenAI SDK refuses to send none.
PLACEHOLDER_KEY = "sk-no-key-needed"


class LiteLLMChatModel(BaseChatModel):
    """Any litellm model as a LangChain chat model; build it with make_chat_model()."""

    model: str
    fallbacks: list[str] = Field(default_factory=list)
    api_base: str | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)

    @property
    def _llm_type(self) -> str:
        return "litellm"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, "fallbacks": self.fallbacks, "api_base": self.api_base}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, dicts, pydantic classes or functions) in OpenAI format."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = _tool_choice(tool_choice)
        return self.bind(tools=formatted, **kwargs)

    async def ainvoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Answer once; streamed tool calls with malformed JSON end up in invalid_tool_calls."""
        message = await super().ainvoke(input, config, stop=stop, **kwargs)
        return apply_strict_tool_calls(message)

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """Answer once (sync); see ainvoke."""
        return apply_strict_tool_calls(super().invoke(input, config, stop=stop, **kwargs))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # One code path for retries and fallbacks: the sync API runs the async one.
        def run() -> ChatResult:
            return asyncio.run(self._agenerate(messages, stop=stop, **kwargs))

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return run()
        with ThreadPoolExecutor(max_workers=1) as pool:  # asyncio.run refuses a running loop
            return pool.submit(run).result()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = _request(messages, stop, kwargs)

        async def attempt(call: dict[str, Any], model: str) -> AIMessage:
            response = await litellm_module().acompletion(**call)
            return message_from_response(response, model)

        message = await self._first_success(request, stream=False, attempt=attempt)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        import openai

        request = _request(messages, stop, kwargs)

        async def attempt(call: dict[str, Any], model: str) -> _OpenStream:
            return await _open_stream(call, model)

        opened = await self._first_success(request, stream=True, attempt=attempt)
        try:
            for early in opened.head:
                yield ChatGenerationChunk(message=early)
            try:
                async for raw in opened.stream:
                    if (chunk := opened.state.chunk(raw)) is not None:
                        yield ChatGenerationChunk(message=chunk)
            except openai.OpenAIError as exc:
                # Text already went out; retrying now would repeat it, so report instead.
                raise mid_stream(classify(exc, opened.model, self.timeout_s)) from None
            yield ChatGenerationChunk(message=opened.state.last_chunk(opened.model))
        finally:
            await _close(opened.stream)

    async def _first_success(
        self,
        request: dict[str, Any],
        *,
        stream: bool,
        attempt: Callable[[dict[str, Any], str], Awaitable[T]],
    ) -> T:
        """Try the primary with retries, then each fallback; raise one SqlsageError if all fail."""
        import openai

        failures: list[Failure] = []
        attempts: dict[str, int] = {}
        targets = [(self.model, self.api_base), *((f, None) for f in self.fallbacks)]
        for model, api_base in targets:
            call = self._call_kwargs(request, model, api_base, stream)
            for n in range(self.max_retries + 1):
                attempts[model] = n + 1
                try:
                    return await attempt(call, model)
                except (openai.OpenAIError, InvalidResponse) as exc:
                    failure = classify(exc, model, self.timeout_s)
                failures.append(failure)
                if not failure.retryable or n == self.max_retries:
                    break
                await asyncio.sleep(retry_delay(n, self.backoff_s, failure.retry_after))
        raise exhausted(failures, attempts) from None

    def _call_kwargs(
        self, request: dict[str, Any], model: str, api_base: str | None, stream: bool
    ) -> dict[str, Any]:
        """litellm.acompletion arguments for one model; retries are ours, so litellm's are off."""
        litellm = litellm_module()
        call = {**request, "model": model, "timeout": self.timeout_s}
        call.update(num_retries=0, max_retries=0)
        if api_base:
            call["api_base"] = api_base
            if missing_keys(model) and key_variable(model) not in os.environ:
                call["api_key"] = PLACEHOLDER_KEY
        if stream:
            call["stream"] = True
            provider = provider_of(model)
            supported = litellm.get_supported_openai_params(
                model=model.split("/", 1)[-1], custom_llm_provider=provider
            )
            if supported and "stream_options" in supported:
                call["stream_options"] = {"include_usage": True}
        return call


@dataclass
class _OpenStream:
    """A stream that has started to answer, so it is committed to one model."""

    model: str
    state: StreamState
    head: list[AIMessageChunk]
    stream: Any  # litellm's CustomStreamWrapper


async def _open_stream(call: dict[str, Any], model: str) -> _OpenStream:
    """Start a stream and read until it says something; an empty stream is an invalid response."""
    stream = await litellm_module().acompletion(**call)
    state = StreamState()
    head: list[AIMessageChunk] = []
    # Failures before the first content are still retryable. litellm also turns a non-SSE
    # body into an empty stream rather than an error, which this catches too.
    try:
        async for raw in stream:
            if (chunk := state.chunk(raw)) is not None:
                head.append(chunk)
            if head or state.usage is not None:
                return _OpenStream(model, state, head, stream)
    except BaseException:
        await _close(stream)
        raise
    await _close(stream)
    raise InvalidResponse("the stream ended without content")


async def _close(stream: Any) -> None:
    """Release the HTTP connection of a stream we stop reading (early exit or failure)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def _request(
    messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
) -> dict[str, Any]:
    # `stream` is LangChain's switch between _agenerate and _astream; the call sets its own.
    request = {k: v for k, v in kwargs.items() if k != "stream"}
    request["messages"] = to_openai_messages(messages)
    if stop:
        request["stop"] = stop
    return request


def _tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    """LangChain's tool_choice spellings in OpenAI's: 'any' means 'required', a name forces it."""
    if isinstance(choice, dict) or choice in ("auto", "none", "required"):
        return choice
    if choice == "any":
        return "required"
    return {"type": "function", "function": {"name": choice}}


def make_chat_model(
    spec: str,
    *,
    fallbacks: list[str] | None = None,
    api_base: str | None = None,
    timeout_s: float = 60.0,
) -> LiteLLMChatModel:
    """Check the model strings and keys up front, then build the gateway model."""
    if not timeout_s > 0:
        raise SqlsageError(
            INVALID_CONFIG,
            f"Model timeout {timeout_s!r} s is not a positive number of seconds.",
            hint="Use e.g. 60; slow local models may need 300.",
        )
    primary = check_spec(spec, needs_key=not api_base)
    backups = [check_spec(f) for f in fallbacks or []]
    return LiteLLMChatModel(
        model=primary, fallbacks=backups, api_base=api_base, timeout_s=timeout_s
    )
