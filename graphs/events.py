"""One typed event stream for every face (SSE, `ask --json`, MCP progress, evals).

Nodes write raw events with LangGraph's stream writer (the agent node streams the model's
text itself: agents/streaming.py says why); `decode` reads them into `Event`s numbered per
turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

EventType = Literal[
    "session", "step", "reasoning", "token", "sql", "table", "chart", "error", "done"
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


# A plain slotted dataclass: ~40 events per question pass through EventCounter.make, and a
# pydantic model cost ~6 us each to build (validation of five fields) where this costs 0.3 us.
@dataclass(slots=True)
class Event:
    """One event: its type, where it belongs (session, turn, seq) and its payload."""

    event: EventType
    session_id: str
    turn: int
    seq: int
    data: dict[str, Any]

    @property
    def id(self) -> str:
        """The SSE id: <session>:<turn>:<seq>."""
        return f"{self.session_id}:{self.turn}:{self.seq}"

    def flat(self) -> dict[str, Any]:
        """The wire form: type, session_id, turn and seq next to the payload fields."""
        return {
            "event": self.event,
            "session_id": self.session_id,
            "turn": self.turn,
            "seq": self.seq,
            **self.data,
        }


class EventCounter:
    """Numbers a turn's events 1, 2, 3, ..."""

    def __init__(self, session_id: str, turn: int) -> None:
        self.session_id = session_id
        self.turn = turn
        self.seq = 0

    def make(self, event: str, data: dict[str, Any]) -> Event:
        """The next event of this turn (its payload copied: it may be a dict the state holds)."""
        if event not in EVENT_TYPES:
            raise ValueError(f"Unknown event type '{event}'. Known: {', '.join(EVENT_TYPES)}.")
        self.seq += 1
        return Event(cast(EventType, event), self.session_id, self.turn, self.seq, dict(data))


def decode(mode: str, chunk: Any, final: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (event, payload) pairs in one chunk of graph.astream(stream_mode=["custom",
    "updates"]); the messages the run added are collected in final["messages"].
    A plain function, not an async generator around the stream: every chunk of a turn passes
    through here, and each generator layer costs a resumption per chunk."""
    if mode == "custom":
        payload = dict(chunk)
        return [(payload.pop("event"), payload)]
    if mode == "updates":
        # Cheaper than "values" (no full state per step): the messages each step added.
        for update in chunk.values():
            if isinstance(update, dict):
                added = [m for m in update.get("messages", []) if m.type != "remove"]
                final.setdefault("messages", []).extend(added)
    return []
