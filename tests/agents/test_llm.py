"""The model gateway against a scripted fake OpenAI server on a real socket: no provider is called."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool

from agents.llm import LiteLLMChatModel, make_chat_model
from agents.usage import add_usage
from tools.errors import MODEL_UNAVAILABLE, RATE_LIMITED, SqlsageError

from .fake_openai import Fail, FakeOpenAI, Garbage, Hang, Reply, ToolCall, fake_openai_server

FAKE_KEY = "sk-test-DO-NOT-LEAK-1234567890"


@tool
def run_sql(sql: str) -> str:
    """Run one read-only SQL query and return its rows."""
    return sql


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on a fresh loop (no pytest-asyncio in this project)."""
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dummy key: litellm's OpenAI client refuses to send a request without one."""
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    """A fresh fake server per test."""
    with fake_openai_server() as fake:
        yield fake


def gateway(
    server: FakeOpenAI, spec: str = "openai/gpt-4o-mini", **fields: Any
) -> LiteLLMChatModel:
    """The model under test, pointed at the fake, with tiny backoff so retries take milliseconds."""
    model = make_chat_model(spec, api_base=server.url, timeout_s=fields.pop("timeout_s", 5.0))
    return model.model_copy(update={"backoff_s": 0.001, **fields})


async def collect(model: Any, prompt: str) -> tuple[list[AIMessageChunk], AIMessageChunk]:
    """All chunks of a stream and their sum."""
    chunks = [chunk async for chunk in model.astream(prompt)]
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return chunks, total


def raises(coro: Coroutine[Any, Any, Any]) -> SqlsageError:
    """Run a coroutine that must fail with SqlsageError, and return the error."""
    with pytest.raises(SqlsageError) as info:
        run(coro)
    return info.value


# --- answers ---------------------------------------------------------------------------------


def test_plain_text_reply(server: FakeOpenAI) -> None:
    server.script(Reply("There are 42 orders."))
    message = run(gateway(server).ainvoke([HumanMessage("How many orders?")]))
    assert isinstance(message, AIMessage)
    assert message.content == "There are 42 orders."
    assert message.response_metadata["model"] == "openai/gpt-4o-mini"
    assert server.requests[0]["model"] == "gpt-4o-mini"
    assert server.requests[0]["messages"] == [{"role": "user", "content": "How many orders?"}]


def test_sync_invoke_runs_the_async_path(server: FakeOpenAI) -> None:
    server.script(Reply("sync works"))
    assert gateway(server).invoke("hi").content == "sync works"


def test_streaming_text_in_chunks_with_usage_on_the_last(server: FakeOpenAI) -> None:
    server.script(Reply("Revenue grew in every quarter.", prompt_tokens=30, completion_tokens=9))
    chunks, total = run(collect(gateway(server), "trend?"))
    texts = [c.content for c in chunks if c.content]
    assert len(texts) > 3
    assert total.content == "Revenue grew in every quarter."
    assert chunks[-1].usage_metadata is not None
    assert all(c.usage_metadata is None for c in chunks[:-1])
    assert total.usage_metadata is not None
    assert (total.usage_metadata["input_tokens"], total.usage_metadata["output_tokens"]) == (30, 9)
    assert total.response_metadata["model"] == "openai/gpt-4o-mini"
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}


def test_streamed_tool_calls_are_assembled_and_tools_sent(server: FakeOpenAI) -> None:
    sql = "SELECT count(*) FROM orders WHERE status = 'shipped'"
    server.script(Reply(tool_calls=(ToolCall("run_sql", {"sql": sql}, id="call_a"),)))
    model = gateway(server).bind_tools([run_sql])
    chunks, total = run(collect(model, "How many shipped?"))
    assert sum(1 for c in chunks if c.tool_call_chunks) > 2  # arguments arrived in fragments
    assert total.tool_calls == [
        {"name": "run_sql", "args": {"sql": sql}, "id": "call_a", "type": "tool_call"}
    ]
    sent = server.requests[0]["tools"]
    assert [t["function"]["name"] for t in sent] == ["run_sql"]
    assert sent[0]["function"]["parameters"]["required"] == ["sql"]


def test_non_streamed_tool_calls_parse_and_tool_choice_is_forwarded(server: FakeOpenAI) -> None:
    server.script(Reply(tool_calls=(ToolCall("run_sql", {"sql": "SELECT 1"}),)))
    message = run(gateway(server).bind_tools([run_sql], tool_choice="run_sql").ainvoke("q"))
    assert message.tool_calls[0]["args"] == {"sql": "SELECT 1"}
    assert server.requests[0]["tool_choice"] == {
        "type": "function",
        "function": {"name": "run_sql"},
    }


def test_history_with_tool_results_is_forwarded(server: FakeOpenAI) -> None:
    server.script(Reply("Done."))
    history = [
        HumanMessage("count orders"),
        AIMessage(
            "",
            tool_calls=[{"name": "run_sql", "args": {"sql": "SELECT 1"}, "id": "c1"}],
            additional_kwargs={"reasoning_content": "DeepSeek rejects this if sent back."},
        ),
        ToolMessage("[[1]]", tool_call_id="c1"),
        AIMessage("", invalid_tool_calls=[{"name": "run_sql", "args": '{"sql', "id": "c2"}]),
        ToolMessage("Error: arguments were not valid JSON", tool_call_id="c2"),
    ]
    run(gateway(server).ainvoke(history))
    sent = server.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["function"] == {
        "name": "run_sql",
        "arguments": '{"sql": "SELECT 1"}',
    }
    assert "reasoning_content" not in sent[1]
    # The malformed call stays in history (its ToolMessage would be orphaned otherwise).
    assert sent[3]["tool_calls"][0]["id"] == "c2"
    assert sent[3]["tool_calls"][0]["function"]["arguments"] == "{}"
    assert sent[4] == {
        "role": "tool",
        "tool_call_id": "c2",
        "content": "Error: arguments were not valid JSON",
    }


def test_reasoning_content_lands_in_additional_kwargs(server: FakeOpenAI) -> None:
    server.script(Reply("42", reasoning="Count the rows first."))
    server.script(Reply("42", reasoning="Count the rows first."))
    message = run(gateway(server).ainvoke("q"))
    assert message.additional_kwargs["reasoning_content"] == "Count the rows first."
    _, total = run(collect(gateway(server), "q"))
    assert total.additional_kwargs["reasoning_content"] == "Count the rows first."


# --- malformed answers -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_malformed_tool_call_json_becomes_invalid_tool_call(
    server: FakeOpenAI, stream: bool
) -> None:
    server.script(Reply(tool_calls=(ToolCall("run_sql", '{"sql": "SELECT', id="c9"),)))
    message = run(gateway(server).bind_tools([run_sql]).ainvoke("q", stream=stream))
    assert message.tool_calls == []  # not silently "repaired" into SELECT
    [bad] = message.invalid_tool_calls
    assert (bad["name"], bad["args"], bad["id"]) == ("run_sql", '{"sql": "SELECT', "c9")
    assert bad["error"] and "not valid JSON" in bad["error"]
    assert "invalid_tool_calls" not in message.response_metadata


@pytest.mark.parametrize("body", ["<html>502 Bad Gateway</html>", '{"id": "no-choices"}'])
@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_garbage_body_is_retried_then_an_error(server: FakeOpenAI, body: str, stream: bool) -> None:
    server.script(Garbage(body), forever=True)
    error = raises(gateway(server, max_retries=1).ainvoke("q", stream=stream))
    assert error.code == MODEL_UNAVAILABLE
    assert "provider returned an invalid response" in error.message
    assert len(server.requests) == 2


# --- retries, timeouts, fallbacks ------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_failure_then_success(server: FakeOpenAI, status: int) -> None:
    server.script(Fail(status), Reply("second time lucky"))
    message = run(gateway(server).ainvoke("q"))
    assert message.content == "second time lucky"
    assert len(server.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retried(server: FakeOpenAI, status: int) -> None:
    server.script(Fail(status), Reply("never reached"))
    error = raises(gateway(server).ainvoke("q"))
    assert error.code == MODEL_UNAVAILABLE
    assert "openai/gpt-4o-mini" in error.message
    assert len(server.requests) == 1


def test_auth_failure_names_the_key_variable_and_never_the_key(server: FakeOpenAI) -> None:
    server.script(Fail(401))
    error = raises(gateway(server).ainvoke("q"))
    assert "OPENAI_API_KEY" in (error.hint or "")
    assert FAKE_KEY not in str(error)
    assert FAKE_KEY not in repr(error.to_dict())


def test_provider_text_that_echoes_the_key_is_scrubbed(server: FakeOpenAI) -> None:
    server.script(Fail(400, message=f"Incorrect API key provided: {FAKE_KEY}. Check it."))
    error = raises(gateway(server).ainvoke("q"))
    assert "Incorrect API key provided" in error.message
    assert FAKE_KEY not in str(error)


def test_retry_after_is_honoured(server: FakeOpenAI) -> None:
    server.script(Fail(429, retry_after=0.4), Reply("after waiting"))
    started = time.monotonic()
    assert run(gateway(server).ainvoke("q")).content == "after waiting"
    assert time.monotonic() - started >= 0.4  # not the 1 ms backoff the test configured


def test_rate_limit_forever_is_rate_limited(server: FakeOpenAI) -> None:
    server.script(Fail(429), forever=True)
    error = raises(gateway(server, max_retries=2).ainvoke("q"))
    assert error.code == RATE_LIMITED
    assert "openai/gpt-4o-mini" in error.message
    assert len(server.requests) == 3


def test_timeout_then_success_on_retry(server: FakeOpenAI) -> None:
    server.script(Hang(3), Reply("fast now"))
    started = time.monotonic()
    message = run(gateway(server, timeout_s=0.5).ainvoke("q"))
    assert message.content == "fast now"
    assert len(server.requests) == 2
    assert time.monotonic() - started < 2.5


def test_timeout_every_time_fails_within_bounded_time(server: FakeOpenAI) -> None:
    server.script(Hang(3), forever=True)
    started = time.monotonic()
    error = raises(gateway(server, timeout_s=0.5, max_retries=1).ainvoke("q"))
    elapsed = time.monotonic() - started
    assert error.code == MODEL_UNAVAILABLE
    assert "timed out after 0.5 s" in error.message
    assert len(server.requests) == 2
    assert elapsed < 2.5  # two 0.5 s attempts and a tiny backoff, not the server's 3 s


def test_fallback_answers_when_the_primary_keeps_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    # api_base is the primary's; the fallback finds its server the way litellm always does.
    with fake_openai_server() as primary, fake_openai_server() as backup:
        primary.script(Fail(500), forever=True)
        backup.script(Reply("from the backup"), model="backup-model")
        monkeypatch.setenv("HOSTED_VLLM_API_BASE", backup.url)
        model = make_chat_model(
            "openai/gpt-4o-mini", fallbacks=["hosted_vllm/backup-model"], api_base=primary.url
        ).model_copy(update={"backoff_s": 0.001, "max_retries": 1})
        message = run(model.ainvoke("q"))
    assert message.content == "from the backup"
    assert message.response_metadata["model"] == "hosted_vllm/backup-model"
    assert len(primary.requests) == 2
    assert [r["model"] for r in backup.requests] == ["backup-model"]


def test_every_model_failing_names_each_model(server: FakeOpenAI) -> None:
    server.script(Fail(500), forever=True)
    model = gateway(server, max_retries=0, fallbacks=["hosted_vllm/other"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOSTED_VLLM_API_BASE", server.url)
        error = raises(model.ainvoke("q"))
    assert error.code == MODEL_UNAVAILABLE
    assert "'openai/gpt-4o-mini'" in error.message
    assert "'hosted_vllm/other'" in error.message


def test_streaming_retries_before_the_first_chunk(server: FakeOpenAI) -> None:
    server.script(Fail(500), Reply("streamed after a retry"))
    _, total = run(collect(gateway(server), "q"))
    assert total.content == "streamed after a retry"
    assert len(server.requests) == 2


def test_failure_mid_stream_is_reported_not_retried(server: FakeOpenAI) -> None:
    server.script(Reply("The answer is forty-two.", break_after=3), Reply("never sent"))
    seen: list[str] = []

    async def consume() -> None:
        async for chunk in gateway(server).astream("q"):
            seen.append(str(chunk.content))

    error = raises(consume())
    streamed = "".join(seen)
    assert streamed and "The answer is forty-two.".startswith(streamed)
    assert error.code == MODEL_UNAVAILABLE
    assert "mid-answer" in error.message
    assert len(server.requests) == 1  # a retry would repeat text the user already saw


# --- up-front checks -------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["gpt-nonsense", "foo/bar", "openai/", "  "])
def test_unknown_or_malformed_model_string(spec: str) -> None:
    with pytest.raises(SqlsageError) as info:
        make_chat_model(spec)
    assert info.value.code == MODEL_UNAVAILABLE
    assert f"'{spec.strip()}'" in info.value.message
    assert "--model builtin" in (info.value.hint or "")
    assert "provider/model" in (info.value.hint or "")


def test_bare_known_name_suggests_the_provider() -> None:
    with pytest.raises(SqlsageError) as info:
        make_chat_model("gpt-4o-mini")
    assert "Did you mean 'openai/gpt-4o-mini'?" in (info.value.hint or "")


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    with pytest.raises(SqlsageError) as info:
        make_chat_model("anthropic/claude-3-5-haiku-latest")
    assert info.value.code == MODEL_UNAVAILABLE
    assert "ANTHROPIC_API_KEY" in info.value.message
    assert "--model builtin" in info.value.message


def test_missing_key_of_a_fallback_is_caught_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(SqlsageError, match="GROQ_API_KEY"):
        make_chat_model("openai/gpt-4o-mini", fallbacks=["groq/llama-3.1-8b-instant"])


def test_no_key_needed_with_api_base_or_for_local_providers(
    monkeypatch: pytest.MonkeyPatch, server: FakeOpenAI
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OLLAMA_API_BASE", raising=False)
    assert make_chat_model("ollama/llama3.1").model == "ollama/llama3.1"
    server.script(Reply("local"))
    # A local OpenAI-compatible server without any key in the environment still answers.
    assert run(gateway(server, "openai/local-model").ainvoke("q")).content == "local"


# --- usage and cost --------------------------------------------------------------------------


def test_usage_and_cost_for_a_priced_model(server: FakeOpenAI) -> None:
    server.script(Reply("ok", prompt_tokens=1000, completion_tokens=500))
    usage = add_usage({}, run(gateway(server).ainvoke("q")))
    assert (usage["input_tokens"], usage["output_tokens"], usage["model_calls"]) == (1000, 500, 1)
    # gpt-4o-mini in litellm's bundled price map: $0.15 / 1M input, $0.60 / 1M output.
    assert usage["cost_usd"] == pytest.approx(1000 * 0.15e-6 + 500 * 0.60e-6)


def test_unpriced_model_costs_zero_but_counts_tokens(server: FakeOpenAI) -> None:
    server.script(Reply("ok", prompt_tokens=12, completion_tokens=3))
    message = run(gateway(server, "openai/my-local-finetune").ainvoke("q"))
    assert message.response_metadata["cost_usd"] == 0.0
    assert message.usage_metadata == {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}


def test_streamed_usage_and_cost(server: FakeOpenAI) -> None:
    server.script(Reply("ok", prompt_tokens=100, completion_tokens=10))
    _, total = run(collect(gateway(server), "q"))
    usage = add_usage({}, total)
    assert (usage["input_tokens"], usage["output_tokens"], usage["model_calls"]) == (100, 10, 1)
    assert usage["cost_usd"] > 0


def _answer(tokens_in: int, tokens_out: int, cost: float) -> AIMessage:
    usage = {"input_tokens": tokens_in, "output_tokens": tokens_out, "total_tokens": 0}
    return AIMessage("a", usage_metadata=usage, response_metadata={"cost_usd": cost})


def test_model_usage_adds_up() -> None:
    total = add_usage(add_usage({}, _answer(10, 2, 0.5)), _answer(5, 1, 0.25))
    assert total == {"input_tokens": 15, "output_tokens": 3, "cost_usd": 0.75, "model_calls": 2}
    nothing = add_usage({}, HumanMessage("not a model answer"))
    assert (nothing["input_tokens"], nothing["output_tokens"], nothing["cost_usd"]) == (0, 0, 0.0)
