"""One typed event stream for every face (SSE, `ask --json`, MCP progress, evals).

Nodes write raw events with LangGraph's stream writer; the model's text arrives through the
`messages` stream mode. `decode` reads both into `Event`s numbered per turn.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage
from pydantic import BaseModel

EventType = Literal[
    "session", "step", "reasoning", "token", "sql", "table", "chart", "error", "done"
]


class Event(BaseModel):
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
        """The next event of this turn."""
        self.seq += 1
        # Every event of a turn passes through here; pydantic's compiled validation of these
        # five fields is faster than model_construct's per-field Python loop (measured).
        return Event(
            event=event,  # type: ignore[arg-type]  # names come from this package's nodes
            session_id=self.session_id,
            turn=self.turn,
            seq=self.seq,
            data=data,
        )


def _text_parts(chunk: BaseMessage) -> tuple[str, str]:
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


def decode(mode: str, chunk: Any, final: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (event, payload) pairs in one chunk of graph.astream(stream_mode=["custom",
    "messages", "updates"]); the messages the run added are collected in final["messages"].
    A plain function, not an async generator around the stream: every chunk of a turn passes
    through here, and each generator layer costs a resumption per chunk."""
    if mode == "custom":
        payload = dict(chunk)
        return [(payload.pop("event"), payload)]
    if mode == "messages":
        message, meta = chunk
        if meta.get("langgraph_node") != "agent" or not isinstance(message, AIMessage):
            return []
        text, reasoning = _text_parts(message)
        out: list[tuple[str, dict[str, Any]]] = []
        if reasoning:
            out.append(("reasoning", {"text": reasoning}))
        if text:
            out.append(("token", {"text": text}))
        return out
    if mode == "updates":
        # Cheaper than "values" (no full state per step): the messages each step added.
        for update in chunk.values():
            if isinstance(update, dict):
                added = [m for m in update.get("messages", []) if m.type != "remove"]
                final.setdefault("messages", []).extend(added)
    return []
