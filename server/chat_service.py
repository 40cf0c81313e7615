"""Starts turns for HTTP clients and serves their events: live to the client that asked,
replayed to clients that reconnect (to this replica or another).

A turn runs in its own task, not in the request: a client that disconnects never cancels it.
Its events go to the LiveTurn (this process), to the shared EventBuffer in small batches,
and to the metrics; when it ends, its record goes to the TurnLog and its lease is released.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from graphs.events import Event
from graphs.turns import Turn, TurnRunner, check_question, collect
from memory.server_stores import TurnLog
from memory.sessions import SessionStore
from server import request_context
from server.api_models import ChatRequest
from server.auth import Principal
from server.event_buffer import LEASE_S, EventBuffer, TurnLeases
from server.live_turns import LiveTurn, LiveTurns
from server.logs import get_logger
from server.metrics import Metrics
from server.settings import Settings
from server.sse import OpenStreams
from tools.errors import (
    BUDGET_EXHAUSTED,
    INTERNAL_ERROR,
    INVALID_ARGUMENT,
    SESSION_BUSY,
    SqlsageError,
)

FLUSH_EVERY_S = 0.05  # events reach the shared buffer in batches at most this far apart
POLL_S = 0.2  # how often a reconnect on another replica looks for new events
REPLAY_WAIT_S = 900.0  # longest a reconnect waits for a turn running elsewhere
log = get_logger("chat")


class RetryLater(SqlsageError):
    """A refusal that passes with time (rate limit, daily budget): carries Retry-After."""

    def __init__(self, code: str, message: str, *, hint: str, retry_after_s: float) -> None:
        super().__init__(code, message, hint=hint)
        self.retry_after_s = retry_after_s


def parse_event_id(value: str) -> tuple[str, int, int]:
    """'<session>:<turn>:<seq>' -> parts; anything else is INVALID_ARGUMENT."""
    parts = value.strip().rsplit(":", 2)
    if len(parts) == 3 and parts[0] and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    raise SqlsageError(
        INVALID_ARGUMENT,
        f"Last-Event-ID '{value[:100]}' is not '<session>:<turn>:<seq>'.",
        hint="Send back the id of the last event you received.",
    )


class ChatService:
    """Turns for HTTP clients: checks, leases, background runs, live and replayed events."""

    def __init__(
        self,
        *,
        settings: Settings,
        runner: TurnRunner,
        sessions: SessionStore,
        turn_log: TurnLog,
        buffer: EventBuffer,
        leases: TurnLeases,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.runner = runner
        self.sessions = sessions
        self.turn_log = turn_log
        self.buffer = buffer
        self.leases = leases
        self.metrics = metrics
        self.live = LiveTurns()
        self.streams = OpenStreams()
        self.replica = uuid.uuid4().hex[:12]
        self._holders = itertools.count(1)  # lease holders: unique per replica, no urandom
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(settings.max_running_turns)

    # -- starting a turn ---------------------------------------------------------------------

    async def start(self, principal: Principal, req: ChatRequest) -> LiveTurn:
        """Check the request, take the session's lease and start the turn; returns once its
        first event exists. Errors before that (bad question, unknown session/db/model, busy
        session, spent budget) are raised and nothing is started or written."""
        question = check_question(req.message)
        resources = self.runner.services.resources
        db = resources.database(req.db).name if req.db is not None else None
        model = self.check_model(req.model)
        if req.session_id is not None:
            await self.sessions.backend.run(self.sessions.get, req.session_id, owner=principal.user)
        await self.check_budget(principal)
        session_id = req.session_id or uuid.uuid4().hex
        holder = f"{self.replica}:{next(self._holders)}"
        leasing: asyncio.Future[bool] | None = None
        if req.session_id is None:
            # A fresh random id: no other turn can hold its lease, and nobody learns the id
            # before this returns. So the lease is taken beside the turn's first write (one
            # group commit, one thread hop fewer) and confirmed below, not awaited first.
            leasing = asyncio.ensure_future(self.leases.acquire(session_id, holder))
        elif not await self.leases.acquire(session_id, holder):
            raise SqlsageError(
                SESSION_BUSY,
                f"Session '{session_id}' is already answering a question.",
                hint="Wait for its 'done' event (or reconnect with Last-Event-ID), then ask again.",
            )
        request_context.session_id.set(session_id)
        request_context.use_cache.set(req.cache)
        turn = Turn(question, session_id=session_id, db=db, model=model, owner=principal.user)
        live = LiveTurn()
        task = asyncio.create_task(self._drive(live, turn, holder))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await live.started()
        finally:
            if leasing is not None and not await leasing:
                raise SqlsageError(  # a clash on a fresh 128-bit random id: never expected
                    INTERNAL_ERROR, f"Session '{session_id}' was leased by another turn.", hint=None
                )
        return live

    def check_model(self, model: str | None) -> str | None:
        """Only configured model names: never a URL, a path or an arbitrary provider string."""
        if model is None:
            return None
        allowed = self.settings.allowed_models()
        if model not in allowed:
            raise SqlsageError(
                INVALID_ARGUMENT,
                f"Unknown model '{model[:100]}'.",
                hint=f"Use one of: {', '.join(allowed)} (the server's SQLSAGE_MODELS).",
            )
        return model

    async def check_budget(self, principal: Principal) -> None:
        """Refuse with 429 when the user's daily turns, tokens or USD are spent."""
        s = self.settings
        limits = (s.budget_turns_per_day, s.budget_tokens_per_day, s.budget_usd_per_day)
        if all(limit is None for limit in limits):
            return
        now = datetime.now(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        used = await self.sessions.backend.run(self.turn_log.usage_since, principal.user, midnight)
        spent = [
            (name, limit, value)
            for name, limit, value in (
                ("turns", s.budget_turns_per_day, used.turns),
                ("model tokens", s.budget_tokens_per_day, used.tokens),
                ("USD", s.budget_usd_per_day, used.cost_usd),
            )
            if limit is not None and value >= limit
        ]
        if spent:
            name, limit, value = spent[0]
            reset = midnight + timedelta(days=1)
            raise RetryLater(
                BUDGET_EXHAUSTED,
                f"The daily budget of {limit:g} {name} for user '{principal.user}' is spent "
                f"({value:g} used today).",
                hint=f"It resets at {reset.isoformat(timespec='minutes')}; ask an operator to "
                "raise SQLSAGE_BUDGET_* if you need more.",
                retry_after_s=(reset - now).total_seconds(),
            )

    # -- running it ----------------------------------------------------------------------------

    async def _drive(self, live: LiveTurn, turn: Turn, holder: str) -> None:
        started = time.perf_counter()
        pending: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []
        events: list[Event] = []
        flushing: asyncio.Task[None] | None = None
        assert turn.session_id is not None
        self.metrics.running_turns.inc()
        renewing = asyncio.create_task(self._keep_lease(turn.session_id, holder))

        async def flush_soon() -> None:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self._flush(pending)

        slotted = False
        try:
            async for event in self.runner.stream(turn):
                flat = event.flat()
                live.push(flat)
                if event.seq == 1:
                    self.live.add(live)
                    # The client has its first event; the graph's work waits for a slot, so
                    # a burst of questions cannot slow every stream's start (the event loop
                    # goes round all running turns between two steps of any one).
                    await self._slots.acquire()
                    slotted = True
                events.append(event)
                self.metrics.observe_event(event.event, event.data)
                if event.event == "step" and event.data.get("status") == "end":
                    at_ms = round((time.perf_counter() - started) * 1000, 2)
                    steps.append({**event.data, "at_ms": at_ms})
                pending.append(flat)
                if flushing is None or flushing.done():
                    flushing = asyncio.create_task(flush_soon())
        except SqlsageError as exc:
            live.fail(exc)
        except Exception as exc:  # a bug: the client gets an error, the server keeps going
            log.exception("turn failed before it started")
            live.fail(SqlsageError(INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:300], hint=None))
        finally:
            if slotted:
                self._slots.release()
            if flushing is not None:
                await asyncio.gather(flushing, return_exceptions=True)
            await self._flush(pending)
            if events:
                await self._record(turn, events, steps)
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            await self.leases.release(turn.session_id, holder)
            self.metrics.running_turns.dec()
            live.finish()
            self.live.forget_later(live)

    async def _keep_lease(self, session_id: str, holder: str) -> None:
        """Renew the session's lease while the turn runs (a dead replica's lease runs out)."""
        while True:
            await asyncio.sleep(LEASE_S / 3)
            try:
                await self.leases.renew(session_id, holder)
            except Exception:
                log.warning("lease renewal failed", exc_info=True)

    async def _flush(self, pending: list[dict[str, Any]]) -> None:
        batch = pending[:]
        del pending[: len(batch)]
        try:
            await self.buffer.append(batch)
        except Exception:  # replay is best effort: the live stream and the checkpoint go on
            log.warning("event buffer write failed", exc_info=True)

    async def _record(self, turn: Turn, events: list[Event], steps: list[dict[str, Any]]) -> None:
        out = collect(events)
        session = events[0].data
        table = None
        if out["result_ref"]:
            table_event = next(e.data for e in reversed(events) if e.event == "table")
            table = {k: table_event.get(k) for k in
                     ("columns", "row_count", "truncated", "elapsed_ms", "cached")}  # fmt: skip
            # The SQL as the model wrote it (before the validator's row cap): exports re-run
            # it with their own, higher cap.
            ran = [s for s in steps if s.get("name") == "run_sql"
                   and not str(s.get("summary") or "").startswith("error")]  # fmt: skip
            if ran:
                table["source_sql"] = (ran[-1].get("args") or {}).get("sql")
        done = events[-1].data if events[-1].event == "done" else {}
        try:
            await self.sessions.backend.run(
                self.turn_log.record,
                session_id=events[0].session_id,
                turn=events[0].turn,
                owner=turn.owner,
                db=session.get("db"),
                model=session.get("model"),
                question=session.get("question"),
                answer=out["answer"],
                status=out["status"],
                sql=out["sql"],
                result_ref=out["result_ref"],
                table=table,
                chart=out["chart"],
                error=out["error"],
                steps=steps,
                input_tokens=out["usage"].get("input_tokens"),
                output_tokens=out["usage"].get("output_tokens"),
                cost_usd=out["usage"].get("cost_usd"),
                elapsed_ms=done.get("elapsed_ms"),
            )
        except Exception:
            log.warning("turn record write failed", exc_info=True)

    # -- reading events ------------------------------------------------------------------------

    async def replay(
        self, principal: Principal, last_event_id: str
    ) -> AsyncIterator[dict[str, Any]]:
        """The rest of a turn after the event the client saw last: live from this process if
        it runs here, else from the shared buffer (polling while it runs elsewhere)."""
        session_id, turn, seq = parse_event_id(last_event_id)
        await self.sessions.backend.run(self.sessions.get, session_id, owner=principal.user)
        return self._replay(session_id, turn, seq)

    async def _replay(self, session_id: str, turn: int, seq: int) -> AsyncIterator[dict[str, Any]]:
        live = self.live.get(session_id, turn)
        if live is not None:
            async for event in live.follow(seq):
                yield event
            return
        deadline = time.monotonic() + REPLAY_WAIT_S
        while time.monotonic() < deadline:
            events = await self.buffer.read(session_id, turn, seq)
            for event in events:
                seq = event["seq"]
                yield event
                if event["event"] == "done":
                    return
            if not events:
                record = await self.sessions.backend.run(self.turn_log.get, session_id, turn)
                if record is not None:
                    return  # finished, and nothing (more) is buffered
                if not await self.leases.held(session_id):
                    # Nobody runs it any more: the replica died mid-turn. Read once more (its
                    # last flush may have landed), then close the turn for the client.
                    late = await self.buffer.read(session_id, turn, seq)
                    if not late:
                        for event in await self._close_dead_turn(session_id, turn, seq):
                            yield event
                        return
            await asyncio.sleep(POLL_S)

    async def _close_dead_turn(self, session_id: str, turn: int, seq: int) -> list[dict[str, Any]]:
        """An error and a done event for a turn whose replica stopped before finishing it;
        buffered and recorded, so every client and the session's history see the same."""
        if seq == 0:
            return []
        error = SqlsageError(
            INTERNAL_ERROR,
            "The server stopped while answering this question; the turn did not finish.",
            hint="Ask the question again: the session and its earlier turns are intact.",
        ).to_dict()
        base = {"session_id": session_id, "turn": turn}
        closing = [
            {**base, "event": "error", "seq": seq + 1, **error},
            {**base, "event": "done", "seq": seq + 2, "answer": "", "sql": None,
             "status": "failed", "usage": {"input_tokens": 0, "output_tokens": 0,
             "cost_usd": 0.0}, "elapsed_ms": 0.0},
        ]  # fmt: skip
        await self._flush(list(closing))
        earlier = await self.buffer.read(session_id, turn, 0)
        first = next((e for e in earlier if e["event"] == "session"), {})
        owner = request_context.user_id.get() or "local"
        await self.sessions.backend.run(
            self.turn_log.record,
            session_id=session_id,
            turn=turn,
            owner=owner,
            db=first.get("db"),
            model=first.get("model"),
            question=first.get("question"),
            answer="",
            status="failed",
            error=error,
            steps=[],
        )
        return closing

    async def remaining(self, principal: Principal, last_event_id: str) -> bool:
        """True when the turn of `last_event_id` has events after it still to deliver."""
        session_id, turn, seq = parse_event_id(last_event_id)
        await self.sessions.backend.run(self.sessions.get, session_id, owner=principal.user)
        live = self.live.get(session_id, turn)
        if live is not None:
            return not live.finished or len(live.events) > seq
        if await self.buffer.read(session_id, turn, seq):
            return True
        # Nothing after `seq` yet: more will come only while the turn is still running.
        record = await self.sessions.backend.run(self.turn_log.get, session_id, turn)
        return record is None and bool(await self.buffer.read(session_id, turn, 0))

    async def shutdown(self, timeout_s: float = 30.0) -> None:
        """Let running turns finish (and be checkpointed) before the process exits."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
