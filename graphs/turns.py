"""Run one question through the graph for a session, as a stream of events, and collect the
stream into the answer every face returns (`ask --json`, the API, MCP, evals).

Errors raised before the turn starts (empty question, unknown database or model) are raised:
faces turn them into usage errors. Errors during the turn become an `error` event, then
`done`; the session and its checkpoints stay intact either way.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.language_models import BaseChatModel

from agents.context import AgentContext, Services
from agents.history import is_user_question
from graphs.events import Event, EventCounter, decode
from graphs.state import State, current_turn, fresh_turn, last, outcome_of, sql_of
from graphs.state import turn_info as state_turn_info
from tools.errors import INTERNAL_ERROR, INVALID_ARGUMENT, NOT_FOUND, SqlsageError

MAX_QUESTION_CHARS = 4000
STREAM_MODES = ["custom", "updates"]


def check_question(question: Any) -> str:
    """The question, trimmed; empty or oversized questions are a clear error."""
    if not isinstance(question, str) or not question.strip():
        raise SqlsageError(
            INVALID_ARGUMENT,
            "The question is empty.",
            hint='Ask something about the data, e.g. "How many customers are in Germany?"',
        )
    text = question.strip()
    if len(text) > MAX_QUESTION_CHARS:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"The question is {len(text):,} characters long; the limit is {MAX_QUESTION_CHARS:,}.",
            hint="Ask one shorter question; put long background into the knowledge file instead.",
        )
    return text


@dataclass
class Turn:
    """What a face needs to start a turn."""

    question: str
    session_id: str | None = None
    db: str | None = None
    model: str | None = None
    owner: str = "local"


@dataclass
class TurnRunner:
    """Runs turns on a compiled graph (with its checkpointer) for many sessions."""

    services: Services
    graph: Any  # CompiledStateGraph
    sessions: Any = None  # memory.sessions.SessionStore, or None (no catalog)
    model_factory: Any = None  # (spec) -> BaseChatModel
    step_budget: int | None = None
    _models: dict[str, BaseChatModel] = field(default_factory=dict)
    _bound: dict[str, Any] = field(default_factory=dict)

    def bound_model(self, spec: str) -> Any:
        """The chat model with the five tools bound, once per process (binding copies schemas)."""
        if spec not in self._bound:
            from tools.registry import tool_schemas

            self._bound[spec] = self.chat_model(spec).bind_tools(tool_schemas())
        return self._bound[spec]

    def chat_model(self, spec: str) -> BaseChatModel:
        """The chat model for a spec, built once per process."""
        if spec not in self._models:
            if self.model_factory is None:
                from agents.models import make_model

                self._models[spec] = make_model(spec, self.services.resources)
            else:
                self._models[spec] = self.model_factory(spec)
        return self._models[spec]

    async def stream(self, turn: Turn) -> AsyncIterator[Event]:
        """Events of one turn: session first, done last."""
        question = check_question(turn.question)
        resources = self.services.resources
        database = resources.database(turn.db)
        spec = turn.model or resources.settings.model
        chat_model = self.chat_model(spec)
        session_id = turn.session_id or uuid.uuid4().hex
        number = await self._start(session_id, turn, database.name, spec, question)
        counter = EventCounter(session_id, number)
        started = time.perf_counter()
        yield counter.make("session", {"db": database.name, "model": spec, "question": question})
        ctx = AgentContext(
            services=self.services,
            chat_model=chat_model,
            bound_model=self.bound_model(spec),
            db=database.name,
            model=spec,
            session_id=session_id,
            turn=number,
        )
        if self.step_budget is not None:
            ctx.step_budget = self.step_budget
        state_in = fresh_turn(question)
        async for event in self._run(state_in, ctx, counter, started):
            yield event

    async def resume(self, session_id: str) -> AsyncIterator[Event]:
        """Finish a turn that a killed process left half done, from its last checkpoint."""
        config = {"configurable": {"thread_id": session_id}}
        spec = self.services.resources.settings.model
        db: str | None = None
        if self.sessions is not None:  # the model and database of its latest turn
            info = await asyncio.to_thread(self.sessions.get, session_id)
            spec, db = info.model or spec, info.db
        snapshot = await self.graph.aget_state(config)
        values = snapshot.values or {}
        turn_info = state_turn_info(cast(State, values))
        if not turn_info:
            raise SqlsageError(
                NOT_FOUND, f"No session '{session_id}' to resume.", hint="Start it with a question."
            )
        counter = EventCounter(session_id, int(turn_info.get("number", 1)))
        started = time.perf_counter()
        ctx = AgentContext(
            services=self.services,
            chat_model=self.chat_model(spec),
            bound_model=self.bound_model(spec),
            db=db,
            model=spec,
            session_id=session_id,
            turn=counter.turn,
        )
        if not snapshot.next:
            closed = outcome_of(current_turn(values.get("messages", [])))
            yield counter.make("done", _done(dict(closed), time.perf_counter() - started, None))
            return
        async for event in self._run(None, ctx, counter, started):
            yield event

    async def _start(self, session_id: str, turn: Turn, db: str, spec: str, question: str) -> int:
        if self.sessions is not None:
            number: int = await self.sessions.abegin_turn(
                session_id, question, owner=turn.owner, db=db, model=spec
            )
            return number
        if getattr(self.graph, "checkpointer", None) is None:
            return 1
        snapshot = await self.graph.aget_state({"configurable": {"thread_id": session_id}})
        messages = (snapshot.values or {}).get("messages", [])
        return sum(1 for m in messages if is_user_question(m)) + 1

    async def _run(
        self,
        state_in: dict[str, Any] | None,
        ctx: AgentContext,
        counter: EventCounter,
        started: float,
    ) -> AsyncIterator[Event]:
        config = {"configurable": {"thread_id": ctx.session_id}, "recursion_limit": 100}
        final: dict[str, Any] = {}
        error: dict[str, Any] | None = None
        sql: str | None = None
        try:
            stream = self.graph.astream(state_in, config, context=ctx, stream_mode=STREAM_MODES)
            async for mode, chunk in stream:
                for name, data in decode(mode, chunk, final):
                    if name == "sql" and data.get("valid"):
                        sql = data["sql"]
                    yield counter.make(name, data)
        except SqlsageError as exc:
            error = exc.to_dict()
        except Exception as exc:  # a bug or an unexpected provider failure: report, keep session
            error = SqlsageError(
                INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:500], hint="Try the question again."
            ).to_dict()
        added = list(final.get("messages", []))
        turn_messages = added
        if state_in is None:  # a resumed turn: its earlier steps are in the checkpoint
            snapshot = await self.graph.aget_state(config)
            turn_messages = current_turn((snapshot.values or {}).get("messages", []))
        result = outcome_of(turn_messages)
        if error is None and result.get("status") in ("failed", "refused"):
            error = result.get("error")
        if error is not None:
            yield counter.make("error", error)
        if self.sessions is not None:
            await self.sessions.afinish_turn(
                ctx.session_id, messages_added=len(added) + (1 if state_in else 0)
            )
        done = _done(dict(result), time.perf_counter() - started, error)
        # A resumed turn may have run its SQL before the kill: its tool message still has it.
        done["sql"] = sql or (_ran_sql(turn_messages) if state_in is None else None)
        yield counter.make("done", done)


def _ran_sql(turn: list[Any]) -> str | None:
    """The SQL the turn's latest successful run_sql ran."""
    latest = last({"messages": turn})
    return sql_of(turn, latest["ref"]) if latest else None


def _done(final: dict[str, Any], elapsed_s: float, error: dict[str, Any] | None) -> dict[str, Any]:
    status = final.get("status") or ("failed" if error else "answered")
    if error is not None and status == "answered":
        status = "failed"
    usage = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, **(final.get("usage") or {})}
    return {
        "answer": final.get("answer") or "",
        "sql": final.get("sql"),
        "status": status,
        "usage": usage,
        "elapsed_ms": round(elapsed_s * 1000, 2),
    }


def collect(events: list[Event]) -> dict[str, Any]:
    """The `ask --json` shape from a turn's events."""
    out: dict[str, Any] = {
        "answer": "",
        "sql": None,
        "columns": [],
        "rows": [],
        "row_count": 0,
        "truncated": False,
        "chart": None,
        "session_id": events[0].session_id if events else None,
        "turn": events[0].turn if events else None,
        "steps": [],
        "usage": {},
        "error": None,
        "status": "failed",
        "result_ref": None,
    }
    for event in events:
        data = event.data
        if event.event == "step" and data.get("status") == "end":
            out["steps"].append({k: data.get(k) for k in ("name", "args", "summary", "elapsed_ms")})
        elif event.event == "table":
            out.update(
                columns=data["columns"],
                rows=data["rows"],
                row_count=data["row_count"],
                truncated=data["truncated"],
                result_ref=data["result_ref"],
            )
        elif event.event == "chart":
            out["chart"] = data["spec"]
        elif event.event == "error":
            out["error"] = data
        elif event.event == "done":
            out.update(answer=data["answer"], usage=data["usage"], status=data["status"])
            out["sql"] = data.get("sql")
    return out
