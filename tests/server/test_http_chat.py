"""POST /api/chat over a real socket: the SSE event sequence, reconnects with Last-Event-ID (same
replica, another replica over the same session database), disconnects that do not cancel the
turn, follow-ups, and concurrent turns on one session."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.settings import Settings

from .instant_model import SQL, InstantModel
from .live_server import SseEvent, chat, iter_sse, live_server

STEPS = [
    ("session",),
    ("step", "retrieve", "start"),
    ("step", "retrieve", "end"),
    ("step", "agent", "start"),
    ("step", "agent", "end"),
    ("step", "semantic_search", "start"),
    ("step", "semantic_search", "end"),
    ("step", "agent", "start"),
    ("step", "agent", "end"),
    ("step", "run_sql", "start"),
    ("sql",),
    ("table",),
    ("step", "run_sql", "end"),
    ("step", "agent", "start"),
    ("step", "agent", "end"),
    ("step", "build_chart", "start"),
    ("chart",),
    ("step", "build_chart", "end"),
    ("step", "agent", "start"),
]


def outline(events: list[SseEvent]) -> list[tuple[str, ...]]:
    """(event,) or (step, name, status); tokens collapsed into one ('token',)."""
    out: list[tuple[str, ...]] = []
    for e in events:
        item: tuple[str, ...] = (
            ("step", e.data["name"], e.data["status"]) if e.event == "step" else (e.event,)
        )
        if item == ("token",) and out and out[-1] == ("token",):
            continue
        out.append(item)
    return out


def settings_for(data_dir: Path, **extra: Any) -> Settings:
    """Server settings over a test data directory, without rate limits getting in the way."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        # Thumbs-up writes examples here; never into the working directory's knowledge/.
        "knowledge_dir": data_dir / "knowledge",
        "rate_limit_per_minute": 100_000,
        "rate_limit_burst": 10_000,
    }
    return Settings(**(values | extra))


def test_event_sequence_of_a_scripted_turn(server_dir: Path, instant: InstantModel) -> None:
    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
        client.stream("POST", "/api/chat", json={"message": "Customers per segment?"}) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = list(iter_sse(resp))
    assert outline(events) == [*STEPS, ("token",), ("step", "agent", "end"), ("done",)]
    session_id = events[0].data["session_id"]
    # One SSE name per event type, ids <session>:<turn>:<seq> counting from 1 without gaps.
    assert [e.id for e in events] == [f"{session_id}:1:{n}" for n in range(1, len(events) + 1)]
    assert all(e.event == e.data["event"] for e in events)
    assert events[0].data | {"session_id": "-"} == {
        "event": "session", "session_id": "-", "turn": 1, "seq": 1, "db": "sample",
        "model": "builtin", "question": "Customers per segment?",
    }  # fmt: skip
    table = next(e.data for e in events if e.event == "table")
    assert table["columns"] == [
        {"name": "segment", "type": "text"},
        {"name": "customers", "type": "integer"},
    ]
    assert sum(row[1] for row in table["rows"]) == 1500  # every sample customer, once
    done = events[-1].data
    assert done["status"] == "answered"
    assert done["sql"].startswith(SQL)
    assert done["usage"]["input_tokens"] == 400 and done["usage"]["output_tokens"] == 80
    answer = "".join(e.data["text"] for e in events if e.event == "token")
    assert answer == done["answer"]


def test_follow_up_in_the_same_session(server_dir: Path, instant: InstantModel) -> None:
    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        first = chat(client, {"message": "Customers per segment?"})
        session_id = first[0].data["session_id"]
        second = chat(client, {"message": "and again?", "session_id": session_id})
        assert second[0].id == f"{session_id}:2:1"
        assert second[-1].data["status"] == "answered"
        detail = client.get(f"/api/sessions/{session_id}").json()
    assert [m["question"] for m in detail["messages"]] == ["Customers per segment?", "and again?"]
    assert detail["turns"] == 2
    assert detail["messages"][1]["rows"] and detail["messages"][1]["chart"]["mark"]


def _read_until(resp: httpx.Response, count: int) -> list[SseEvent]:
    got: list[SseEvent] = []
    for event in iter_sse(resp):
        got.append(event)
        if len(got) == count:
            break
    return got


def test_reconnect_with_last_event_id_gets_the_rest(server_dir: Path) -> None:
    slow = InstantModel(delay_s=0.4)
    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: slow) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        with client.stream("POST", "/api/chat", json={"message": "Customers per segment?"}) as r:
            head = _read_until(r, 6)
        # The client went away mid-turn; it comes back with the id of the last event it saw.
        last = head[-1].id
        assert last is not None
        with client.stream("GET", "/api/chat/events", headers={"Last-Event-ID": last}) as r:
            assert r.status_code == 200
            rest = list(iter_sse(r))
        # A fetch-style client may instead POST again with the header: same rest, no new turn.
        with client.stream(
            "POST", "/api/chat", json={"message": "Customers per segment?"},
            headers={"Last-Event-ID": last},
        ) as r:  # fmt: skip
            again = list(iter_sse(r))
        sessions = client.get("/api/sessions").json()
    seqs = [e.data["seq"] for e in head + rest]
    assert seqs == list(range(1, len(seqs) + 1)), "no event lost or repeated"
    assert rest[-1].event == "done" and rest[-1].data["status"] == "answered"
    assert [e.id for e in again] == [e.id for e in rest]
    assert len(sessions) == 1 and sessions[0]["turns"] == 1


def test_disconnect_never_cancels_the_turn(server_dir: Path) -> None:
    slow = InstantModel(delay_s=0.3)
    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: slow) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        with client.stream("POST", "/api/chat", json={"message": "Customers per segment?"}) as r:
            head = _read_until(r, 3)
        session_id = head[0].data["session_id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            detail = client.get(f"/api/sessions/{session_id}").json()
            if detail["messages"]:
                break
            time.sleep(0.2)
        metrics = client.get("/metrics").text
    assert detail["messages"][0]["status"] == "answered"
    assert detail["message_count"] > 0  # the checkpoint holds the whole turn
    assert "sqlsage_active_streams 0.0" in metrics


def test_replay_from_another_replica_after_the_turn(
    server_dir: Path, instant: InstantModel
) -> None:
    settings = settings_for(server_dir)
    with (
        live_server(settings, model_factory=lambda spec: instant) as one,
        httpx.Client(base_url=one.url, timeout=60) as client,
    ):
        events = chat(client, {"message": "Customers per segment?"})
    # A second process over the same data directory (the same session database) serves it.
    with (
        live_server(settings, model_factory=lambda spec: instant) as two,
        httpx.Client(base_url=two.url, timeout=60) as client,
        client.stream("GET", "/api/chat/events", headers={"Last-Event-ID": events[4].id}) as r,
    ):
        rest = list(iter_sse(r))
    assert [e.id for e in rest] == [e.id for e in events[5:]]


def test_concurrent_turns_on_one_session_never_interleave(
    server_dir: Path, instant: InstantModel
) -> None:
    slow = InstantModel(delay_s=0.05)

    async def scenario(url: str) -> tuple[list[int], str]:
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
            first = await client.post("/api/chat", json={"message": "Customers per segment?"})
            session_id = first.text.split('session_id":"', 1)[1].split('"', 1)[0]

            async def one() -> int:
                body = {"message": "and again?", "session_id": session_id}
                async with client.stream("POST", "/api/chat", json=body) as resp:
                    await resp.aread()
                    if resp.status_code == 409:
                        assert resp.json()["error"]["code"] == "session_busy"
                    return resp.status_code

            codes = await asyncio.gather(*(one() for _ in range(50)))
            return list(codes), session_id

    with live_server(settings_for(server_dir), model_factory=lambda spec: slow) as srv:
        codes, session_id = asyncio.run(scenario(srv.url))
        with httpx.Client(base_url=srv.url, timeout=60) as client:
            detail = client.get(f"/api/sessions/{session_id}").json()
        state = asyncio.run(
            srv.state.runner.graph.aget_state({"configurable": {"thread_id": session_id}})
        )
    assert set(codes) <= {200, 409} and 200 in codes and 409 in codes
    ran = codes.count(200) + 1
    assert detail["turns"] == ran
    assert [m["turn"] for m in detail["messages"]] == list(range(1, ran + 1))
    # Each turn in the checkpoint: its question, then tool results that answer calls made in
    # that same turn, and one final answer; interleaved turns would break this.
    messages = state.values["messages"]
    starts = [i for i, m in enumerate(messages) if m.type == "human"]
    for a, b in itertools.pairwise([*starts, len(messages)]):
        turn = messages[a + 1 : b]
        called = set()
        for m in turn:
            if m.type == "ai":
                called |= {c["id"] for c in m.tool_calls}
            elif m.type == "tool":
                assert m.tool_call_id in called
        assert turn and turn[-1].type == "ai" and not turn[-1].tool_calls


def test_session_ids_are_unique_per_new_chat(server_dir: Path, instant: InstantModel) -> None:
    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        ids = {chat(client, {"message": f"q {uuid.uuid4().hex[:4]}"})[0].data["session_id"]
               for _ in range(3)}  # fmt: skip
        listed = {s["session_id"] for s in client.get("/api/sessions").json()}
    assert len(ids) == 3 and ids == listed


@pytest.mark.parametrize("bypass", [False, True])
def test_result_cache_hits_show_in_trace_and_metrics(
    server_dir: Path, instant: InstantModel, bypass: bool
) -> None:
    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        chat(client, {"message": "Customers per segment?"})
        events = chat(client, {"message": "Customers per segment?", "cache": not bypass})
        session_id = events[0].data["session_id"]
        trace = client.get(f"/api/traces/{session_id}/1").json()
        metrics = client.get("/metrics").text
        audit = client.get("/api/audit").json()["entries"]
    table = next(e.data for e in events if e.event == "table")
    run_end = next(s for s in trace["steps"] if s["name"] == "run_sql")
    if bypass:
        assert "cached" not in table and "(cached)" not in run_end["summary"]
        assert trace["cache_hits"] == 0
        assert 'sqlsage_cache_lookups_total{result="hit"}' not in metrics
        assert [a["outcome"] for a in audit] == ["ok", "ok"]
    else:
        assert table["cached"] is True and "(cached)" in run_end["summary"]
        assert trace["cache_hits"] == 1
        assert 'sqlsage_cache_lookups_total{result="hit"} 1.0' in metrics
        assert [a["outcome"] for a in audit] == ["cached", "ok"]


def test_a_turn_whose_replica_died_is_closed_on_reconnect(
    server_dir: Path, instant: InstantModel
) -> None:
    from server.event_buffer import SqlEventBuffer

    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        # What a replica killed mid-turn leaves: the session, the first events, no lease,
        # no turn record.
        sid = srv.state.sessions.create().session_id
        head = [
            {"event": "session", "session_id": sid, "turn": 1, "seq": 1, "db": "sample",
             "model": "builtin", "question": "Customers per segment?"},
            {"event": "step", "session_id": sid, "turn": 1, "seq": 2, "name": "retrieve",
             "status": "start", "args": {}},
        ]  # fmt: skip
        asyncio.run(SqlEventBuffer(srv.state.sessions.backend, 60).append(head))
        with client.stream("GET", "/api/chat/events", headers={"Last-Event-ID": f"{sid}:1:1"}) as r:
            rest = list(iter_sse(r))
        detail = client.get(f"/api/sessions/{sid}").json()
        # Another client reconnecting later gets the same closing events from the buffer.
        with client.stream("GET", "/api/chat/events", headers={"Last-Event-ID": f"{sid}:1:2"}) as r:
            later = list(iter_sse(r))
        after = chat(client, {"message": "Customers per segment?", "session_id": sid})
    assert [(e.event, e.data["seq"]) for e in rest] == [("step", 2), ("error", 3), ("done", 4)]
    assert "stopped while answering" in rest[1].data["message"]
    assert rest[2].data["status"] == "failed"
    assert [e.id for e in later] == [e.id for e in rest[1:]]
    assert detail["messages"][0]["status"] == "failed"
    assert detail["messages"][0]["question"] == "Customers per segment?"
    assert after[-1].data["status"] == "answered"
