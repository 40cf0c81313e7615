"""The graph's nodes: plain async functions over (state, runtime). Guards live here, in state,
not in prompts: the step budget, the repair budget, run_sql's validation, the number check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal, cast

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.runtime import Runtime

from agents.answer_check import invented_numbers
from agents.context import NUMBER_CHECKS, AgentContext
from agents.history import OWN_NAME, compaction, for_model, split_turns
from agents.prompts import GAVE_UP, NUMBER_CHECK, SYSTEM
from agents.streaming import stream_reply, text_parts
from graphs.state import META, Guards, State, guards, meta, outcome, question_of, sql_of
from graphs.state import last as last_of
from graphs.tool_calls import REPAIRABLE, execute
from tools.errors import (
    BUDGET_EXHAUSTED,
    CANCELLED,
    DATABASE_UNREACHABLE,
    INVALID_ARGUMENT,
    MODEL_UNAVAILABLE,
    TIMEOUT,
    UNANSWERABLE,
    SqlsageError,
)
from tools.registry import tool_schemas
from tools.semantic_search import semantic_search

RETRIEVE_K = 8
# Failures that are not the SQL's fault: no rewrite fixes them, and the user must hear which.
OUTAGES = frozenset({DATABASE_UNREACHABLE, TIMEOUT, CANCELLED})


Emit = Callable[[str, dict[str, Any]], None]


def emitter(runtime: Runtime[AgentContext]) -> Emit:
    """Sends one event to whoever streams this run (nothing happens when nobody does). The
    node's runtime holds the writer: get_stream_writer() would look it up again per event."""
    write = runtime.stream_writer

    def emit(event: str, data: dict[str, Any]) -> None:
        write({"event": event, **data})

    return emit


def _ctx(runtime: Runtime[AgentContext]) -> AgentContext:
    return runtime.context if runtime.context is not None else AgentContext()


def _search_text(state: State) -> str:
    """The question, with the previous question in front when this looks like a follow-up."""
    question = question_of(state)
    turns = split_turns(state.get("messages", []))
    if len(turns) >= 2 and len(question.split()) <= 8:
        return f"{turns[-2][0].content} {question}"
    return question


async def _retrieve_quietly(state: State, ctx: AgentContext) -> str:
    """Schema context for this turn's question; sets ctx.context; returns a step summary."""
    if ctx.services is None:
        ctx.context = ""
        return "no services"
    try:
        resources = ctx.services.resources
        database = resources.database(ctx.db)
        found = await asyncio.to_thread(
            semantic_search, resources.index, database, _search_text(state), k=RETRIEVE_K
        )
        ctx.context = found.context
        return f"{len(found.tables)} table(s)"
    except SqlsageError as exc:
        # Retrieval is a help, not a gate: the model can still look the schema up.
        ctx.context = f"(schema context unavailable: {exc.message})"
        return f"error: {exc.code}"


async def retrieve(state: State, ctx: AgentContext, emit: Emit) -> None:
    """The turn's first stage: find the schema context for the question (with the
    conversation so far), shown as its own `retrieve` step. It runs inside the agent node's
    first call of a turn rather than as a node of its own: a node is a superstep and a
    checkpoint, and the context lives in the run's context, not in the state (checkpoints
    would store it again after every step), so a resumed turn retrieves again anyway."""
    started = time.perf_counter()
    emit("step", {"name": "retrieve", "status": "start", "args": {}})
    summary = await _retrieve_quietly(state, ctx)
    emit(
        "step",
        {
            "name": "retrieve",
            "status": "end",
            "summary": summary,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )


def _system(ctx: AgentContext, used: int) -> SystemMessage:
    dialect = "SQL"
    if ctx.services is not None:
        dialect = ctx.services.resources.database(ctx.db).dialect
    left = ctx.step_budget - used
    return SystemMessage(
        SYSTEM.format(
            dialect=dialect,
            db=ctx.db or "default",
            steps=left,
            context=ctx.context or "(none)",
        )
    )


async def call_model(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the model for its next step: tool calls, or the answer. It also closes the turn
    (answer accepted, budgets used up): a separate node would cost a step and a checkpoint."""
    ctx = _ctx(runtime)
    emit = emitter(runtime)
    if ctx.chat_model is None:
        raise SqlsageError(
            MODEL_UNAVAILABLE,
            "No chat model was given to the graph.",
            hint="Run through sqlsage ask/chat, or pass AgentContext(chat_model=...).",
        )
    if ctx.context is None:  # first call of the turn (or of a resumed one)
        await retrieve(state, ctx, emit)
    started = time.perf_counter()
    emit("step", {"name": "agent", "status": "start", "args": {}})
    checks = guards(state)
    if checks["failures"] >= ctx.repair_budget:
        _step_end(emit, "gave up", started)
        return _close(state, ctx, None, checks, emit)
    out_of_steps = checks["tool_calls"] >= ctx.step_budget
    if out_of_steps:
        model: Any = ctx.chat_model  # the last word: no tools, answer with what there is
    else:
        if ctx.bound_model is None:
            ctx.bound_model = ctx.chat_model.bind_tools(tool_schemas())
        model = ctx.bound_model
    messages = [_system(ctx, checks["tool_calls"]), *for_model(state.get("messages", []))]
    response = await stream_reply(model, messages, _speaker(emit))
    calls = len(response.tool_calls) + len(response.invalid_tool_calls)
    _step_end(emit, f"{calls} tool call(s)" if calls else "answer", started)
    if calls and not out_of_steps:
        return {"messages": [response]}
    if not calls:
        nudge = _number_check(state, response, checks["number_checks"])
        if nudge is not None:
            return {"messages": [response, nudge]}
    return _close(state, ctx, response, checks, emit)


def _speaker(emit: Emit) -> Callable[[BaseMessage], None]:
    """Turns the model's streamed chunks into `reasoning` and `token` events."""

    def speak(chunk: BaseMessage) -> None:
        text, reasoning = text_parts(chunk)
        if reasoning:
            emit("reasoning", {"text": reasoning})
        if text:
            emit("token", {"text": text})

    return speak


def _step_end(emit: Emit, summary: str, started: float) -> None:
    emit(
        "step",
        {
            "name": "agent",
            "status": "end",
            "summary": summary,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )


def _number_check(state: State, response: AIMessage, checks: int) -> HumanMessage | None:
    """None to accept the answer; a nudge (once) when it states figures no result contains."""
    result = last_of(state)
    if result is None or checks >= NUMBER_CHECKS:
        return None
    sql = sql_of(state.get("messages", []), result["ref"]) or ""
    sources: list[Any] = [question_of(state), sql, result["row_count"]]
    sources += [v for row in result.get("rows") or [] for v in row]
    invented = invented_numbers(str(response.content), sources=sources)
    if not invented:
        return None
    return HumanMessage(NUMBER_CHECK.format(numbers=", ".join(invented)), name=OWN_NAME)


def _closing(message: AIMessage, status: str, error: dict[str, Any] | None) -> AIMessage:
    """The message that ends a turn, marked with how it ended."""
    record = {**meta(message), "status": status, "error": error}
    return message.model_copy(
        update={"response_metadata": {**message.response_metadata, META: record}}
    )


def _close(
    state: State, ctx: AgentContext, response: AIMessage | None, checks: Guards, emit: Emit
) -> dict[str, Any]:
    """End the turn: the answer, or an honest 'could not answer' with the last error (its
    text streamed as the answer's); and compact older turns so checkpoints stay small.
    `checks` are the state's guards (the caller has counted them already)."""
    messages: list[Any] = [*compaction(state.get("messages", []))]
    error = outcome(state).get("error")
    failures = checks["failures"]
    answer = str(response.content).strip() if response is not None else ""
    if response is not None and answer and failures < ctx.repair_budget:
        if response.response_metadata.get("refused"):
            if error is not None:  # it gave up because a tool failed: that failure is the news
                return {"messages": [*messages, _closing(response, "failed", error)]}
            hint = "Rephrase the question, or configure a real model (SQLSAGE_MODEL)."
            refusal = SqlsageError(UNANSWERABLE, answer, hint=hint).to_dict()
            return {"messages": [*messages, _closing(response, "refused", refusal)]}
        return {"messages": [*messages, _closing(response, "answered", None)]}
    if response is not None:
        messages.append(response)  # its usage counts; it did not end the turn
    if error is not None and error.get("code") in OUTAGES:
        pass  # the database was down or too slow: say that, not "budget exhausted"
    elif failures >= ctx.repair_budget:
        reason = (
            f"After {failures} failed attempts the last error was: "
            f"{(error or {}).get('message', 'unknown')}"
        )
        error = SqlsageError(
            BUDGET_EXHAUSTED,
            reason,
            hint="Rephrase the question, or name the tables and columns to use.",
        ).to_dict()
    else:
        error = SqlsageError(
            BUDGET_EXHAUSTED, f"The step budget of {ctx.step_budget} tool calls ran out."
        ).to_dict()
    gave_up = AIMessage(
        GAVE_UP.format(reason=error["message"]), response_metadata={META: {"ours": True}}
    )
    emit("token", {"text": gave_up.content})
    return {"messages": [*messages, _closing(gave_up, "failed", error)]}


def _tool_message(
    text: str,
    call_id: str,
    *,
    name: str | None = None,
    artifact: Any = None,
    error: dict[str, Any] | None = None,
    failure: bool = False,
    skipped: bool = False,
) -> ToolMessage:
    """A tool's answer, marked for the turn's counters (run or skipped, failure, error)."""
    record: dict[str, Any] = {}
    if error is not None:
        record["error"] = error
    if failure:
        record["failure"] = True
    if skipped:
        record["skipped"] = True
    return ToolMessage(
        text,
        tool_call_id=call_id,
        name=name,
        artifact=artifact,
        status="error" if error is not None else "success",
        response_metadata={META: record} if record else {},
    )


async def call_tools(state: State, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Run the model's tool calls within the step budget; failures count toward repairs."""
    ctx = _ctx(runtime)
    emit = emitter(runtime)
    asked = state["messages"][-1]
    assert isinstance(asked, AIMessage)
    used = guards(state)["tool_calls"]
    messages: list[ToolMessage] = []
    for bad in asked.invalid_tool_calls:
        text = (
            f"Error [{INVALID_ARGUMENT}]: the arguments of {bad.get('name')} were not valid "
            f"JSON ({bad.get('error') or 'could not parse'}). Send them again as a JSON object."
        )
        emit(
            "step",
            {
                "name": bad.get("name") or "tool",
                "status": "end",
                "args": {},
                "summary": "error: invalid arguments",
                "elapsed_ms": 0.0,
            },
        )
        error = SqlsageError(INVALID_ARGUMENT, text).to_dict()
        messages.append(
            _tool_message(text, bad.get("id") or "invalid", error=error, failure=True, skipped=True)
        )
    for call in asked.tool_calls:
        if used >= ctx.step_budget:
            text = (
                f"Error [{BUDGET_EXHAUSTED}]: the step budget of {ctx.step_budget} tool "
                "calls for this question is used up; answer with what you have."
            )
            error = SqlsageError(BUDGET_EXHAUSTED, text).to_dict()
            messages.append(_tool_message(text, call["id"] or "", error=error, skipped=True))
            continue
        used += 1
        started = time.perf_counter()
        emit("step", {"name": call["name"], "status": "start", "args": call["args"]})
        # Earlier calls of this same reply (a run_sql before a build_chart) count as done.
        so_far = cast(State, {"messages": [*state["messages"], *messages]})
        result = await execute(dict(call), so_far, ctx)
        for name, data in result.events:
            emit(name, data)
        emit(
            "step",
            {
                "name": call["name"],
                "status": "end",
                "args": call["args"],
                "summary": result.summary,
                "elapsed_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        messages.append(
            _tool_message(
                result.content,
                call["id"] or "",
                name=call["name"],
                artifact=result.artifact,
                error=result.error.model_dump() if result.error is not None else None,
                failure=not result.ok and call["name"] in REPAIRABLE,
            )
        )
    return {"messages": messages}


async def after_model(
    state: State, runtime: Runtime[AgentContext]
) -> Literal["tools", "agent", "__end__"]:
    """Tool calls go to the tools (while steps are left); an answer sent back by the number
    check goes to the model; anything else ended the turn. Async, so LangGraph runs it inline
    instead of in a worker thread."""
    final = state["messages"][-1]
    calls = isinstance(final, AIMessage) and bool(final.tool_calls or final.invalid_tool_calls)
    if calls and guards(state)["tool_calls"] < _ctx(runtime).step_budget:
        return "tools"
    if isinstance(final, HumanMessage):
        return "agent"
    return "__end__"
