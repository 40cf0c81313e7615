"""The events of turns running in this process, for the client that started them and for
clients that reconnect to the same replica. Other replicas read the shared EventBuffer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from tools.errors import SqlsageError

KEEP_FINISHED_S = 60.0


class LiveTurn:
    """One running turn: its events so far, and whether it has finished."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.finished = False
        self.session_id: str | None = None
        self.turn: int | None = None
        self._changed = asyncio.Event()
        self._first: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def push(self, event: dict[str, Any]) -> None:
        """Append an event and wake the followers."""
        if not self.events:
            self.session_id, self.turn = event["session_id"], event["turn"]
            if not self._first.done():
                self._first.set_result(None)
        self.events.append(event)
        self._changed.set()

    def fail(self, error: SqlsageError) -> None:
        """The turn could not start (nothing was streamed): the starter raises `error`."""
        if not self._first.done():
            self._first.set_exception(error)

    def finish(self) -> None:
        """No more events will come."""
        self.finished = True
        if not self._first.done():
            self._first.set_exception(RuntimeError("the turn ended without events"))
        self._changed.set()

    async def started(self) -> None:
        """Wait for the first event; raises what stopped the turn from starting."""
        await self._first

    async def follow(self, after_seq: int = 0) -> AsyncIterator[dict[str, Any]]:
        """Events with seq > after_seq, as they come, until the turn finishes."""
        index = after_seq  # seq n is events[n - 1]
        while True:
            while index < len(self.events):
                index += 1
                yield self.events[index - 1]
            if self.finished:
                return
            # push() and finish() run on this loop: nothing can land between clear and wait.
            self._changed.clear()
            await self._changed.wait()


class LiveTurns:
    """Running (and just finished) turns of this process by (session, turn) and by session."""

    def __init__(self) -> None:
        self._turns: dict[tuple[str, int], LiveTurn] = {}

    def add(self, live: LiveTurn) -> None:
        """Register a turn once its first event told its session and number."""
        assert live.session_id is not None and live.turn is not None
        self._turns[(live.session_id, live.turn)] = live

    def get(self, session_id: str, turn: int) -> LiveTurn | None:
        """The turn if this process ran it recently."""
        return self._turns.get((session_id, turn))

    def forget_later(self, live: LiveTurn) -> None:
        """Drop a finished turn after a grace period (reconnects read the shared buffer then)."""
        if live.session_id is None or live.turn is None:
            return
        key = (live.session_id, live.turn)
        asyncio.get_running_loop().call_later(KEEP_FINISHED_S, self._turns.pop, key, None)
