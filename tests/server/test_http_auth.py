"""API keys, per-user isolation on every endpoint, rate limits, budgets and the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .instant_model import InstantModel
from .live_server import LiveServer, chat, live_server
from .test_http_chat import settings_for

ALICE = "alice-key-0001"
BOB = "bob-key-00002"
KEYS = f"{ALICE}=alice,{BOB}=bob"


def as_user(key: str) -> dict[str, str]:
    """Bearer auth for a key."""
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keyed(server_dir: Path, instant: InstantModel) -> Iterator[tuple[LiveServer, str, str]]:
    """A server with two users' keys; alice (admin) has one finished session."""
    settings = settings_for(server_dir, api_keys=KEYS, admin_users="alice")
    with (
        live_server(settings, model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        events = chat(client, {"message": "Customers per segment?"}, headers=as_user(ALICE))
        yield srv, events[0].data["session_id"], events[5].id or ""


def test_requests_without_a_valid_key_are_401(keyed: tuple[LiveServer, str, str]) -> None:
    srv, session_id, _ = keyed
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        missing = client.get("/api/sessions")
        wrong = client.get("/api/sessions", headers=as_user("not-a-real-key"))
        other_scheme = client.get("/api/sessions", headers={"Authorization": f"Basic {ALICE}"})
        header_key = client.get("/api/sessions", headers={"X-API-Key": ALICE})
        chat_refused = client.post("/api/chat", json={"message": "hi"})
        open_routes = [client.get(p).status_code for p in ("/api/health", "/metrics")]
    for resp, text in ((missing, "No API key"), (wrong, "not valid"), (other_scheme, "No API key")):
        assert resp.status_code == 401
        assert text in resp.json()["error"]["message"]
        assert "Bearer" in resp.json()["error"]["hint"]
    assert ALICE not in wrong.text
    assert header_key.status_code == 200 and header_key.json()[0]["session_id"] == session_id
    assert chat_refused.status_code == 401
    assert open_routes == [200, 200]


def test_another_users_session_is_404_on_every_endpoint(
    keyed: tuple[LiveServer, str, str],
) -> None:
    srv, sid, event_id = keyed
    bob = as_user(BOB)
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        attempts: dict[str, httpx.Response] = {
            "get": client.get(f"/api/sessions/{sid}", headers=bob),
            "rename": client.patch(f"/api/sessions/{sid}", json={"title": "mine"}, headers=bob),
            "delete": client.delete(f"/api/sessions/{sid}", headers=bob),
            "continue": client.post(
                "/api/chat", json={"message": "and more?", "session_id": sid}, headers=bob
            ),
            "traces": client.get(f"/api/traces/{sid}", headers=bob),
            "trace": client.get(f"/api/traces/{sid}/1", headers=bob),
            "export": client.get(f"/api/export/{sid}/1.csv", headers=bob),
            "feedback": client.post(
                "/api/feedback", json={"session_id": sid, "turn": 1, "rating": "up"}, headers=bob
            ),
            "replay": client.get("/api/chat/events", headers={**bob, "Last-Event-ID": event_id}),
        }
        missing = client.get("/api/sessions/no-such-session", headers=bob)
        listed = client.get("/api/sessions", headers=bob).json()
        still_there = client.get(f"/api/sessions/{sid}", headers=as_user(ALICE))
    for name, resp in attempts.items():
        assert resp.status_code == 404, name
        assert resp.json()["error"]["code"] == "not_found", name
    # Exactly what a session that does not exist looks like: nothing tells them apart.
    assert attempts["get"].json()["error"]["message"] == f"Session '{sid}' not found."
    assert missing.json()["error"]["message"] == "Session 'no-such-session' not found."
    assert listed == []
    assert still_there.status_code == 200 and still_there.json()["title"] != "mine"
    assert len(still_there.json()["messages"]) == 1


def test_owner_can_rename_trace_export_and_delete(keyed: tuple[LiveServer, str, str]) -> None:
    srv, sid, _ = keyed
    alice = as_user(ALICE)
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        renamed = client.patch(
            f"/api/sessions/{sid}", json={"title": "  Segments  "}, headers=alice
        )
        trace = client.get(f"/api/traces/{sid}/1", headers=alice).json()
        csv_text = client.get(f"/api/export/{sid}/1.csv", headers=alice).text
        deleted = client.delete(f"/api/sessions/{sid}", headers=alice)
        after = client.get(f"/api/sessions/{sid}", headers=alice)
        state = srv.state
    assert renamed.json()["title"] == "Segments"
    names = [s["name"] for s in trace["steps"]]
    assert names == ["retrieve", "agent", "semantic_search", "agent", "run_sql", "agent",
                     "build_chart", "agent"]  # fmt: skip
    assert trace["usage"]["input_tokens"] == 400
    assert all(s["elapsed_ms"] >= 0 and s["at_ms"] > 0 for s in trace["steps"])
    assert csv_text.splitlines()[0] == "segment,customers"
    assert deleted.status_code == 204 and after.status_code == 404
    assert state.turn_log.for_session(sid) == []


def test_rate_limit_answers_429_with_retry_after(server_dir: Path, instant: InstantModel) -> None:
    settings = settings_for(server_dir, api_keys=KEYS, rate_limit_per_minute=6, rate_limit_burst=3)
    with (
        live_server(settings, model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as client,
    ):
        codes = [client.get("/api/sessions", headers=as_user(ALICE)) for _ in range(5)]
        bob = client.get("/api/sessions", headers=as_user(BOB))
        metrics = client.get("/metrics").text
    assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
    limited = codes[3]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert "6 per minute" in limited.json()["error"]["message"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 10
    assert bob.status_code == 200  # buckets are per key
    assert 'sqlsage_errors_total{code="rate_limited"} 2.0' in metrics


def test_daily_turn_budget_answers_429(server_dir: Path, instant: InstantModel) -> None:
    settings = settings_for(server_dir, api_keys=KEYS, budget_turns_per_day=1)
    with (
        live_server(settings, model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        chat(client, {"message": "Customers per segment?"}, headers=as_user(ALICE))
        refused = client.post("/api/chat", json={"message": "again"}, headers=as_user(ALICE))
        bob = chat(client, {"message": "Customers per segment?"}, headers=as_user(BOB))
        listed = client.get("/api/sessions", headers=as_user(ALICE)).json()
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "budget_exhausted"
    assert "daily budget of 1 turns for user 'alice'" in error["message"]
    assert int(refused.headers["Retry-After"]) > 0
    assert bob[-1].data["status"] == "answered"
    assert len(listed) == 1  # the refused request started nothing


def test_daily_token_budget(server_dir: Path, instant: InstantModel) -> None:
    settings = settings_for(server_dir, budget_tokens_per_day=400)
    with (
        live_server(settings, model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        chat(client, {"message": "Customers per segment?"})  # 480 tokens
        refused = client.post("/api/chat", json={"message": "again"})
    assert refused.status_code == 429
    assert "400 model tokens" in refused.json()["error"]["message"]


def test_audit_log_is_for_admins(keyed: tuple[LiveServer, str, str]) -> None:
    srv, sid, _ = keyed
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        entries: list[dict[str, Any]] = client.get("/api/audit", headers=as_user(ALICE)).json()[
            "entries"
        ]
        filtered = client.get("/api/audit", params={"user": "bob"}, headers=as_user(ALICE)).json()[
            "entries"
        ]
        bob = client.get("/api/audit", headers=as_user(BOB))
    assert len(entries) == 1
    entry = entries[0]
    assert entry["user_id"] == "alice" and entry["session_id"] == sid and entry["turn"] == 1
    assert entry["db"] == "sample" and entry["outcome"] == "ok" and entry["row_count"] == 3
    assert entry["sql_text"].startswith("SELECT segment, COUNT(*)")
    assert entry["source"] == "turn" and entry["elapsed_ms"] >= 0
    assert filtered == []
    assert bob.status_code == 403 and bob.json()["error"]["code"] == "forbidden"


def test_ready_tells_reasons_only_to_a_key(server_dir: Path, instant: InstantModel) -> None:
    from server.settings import DatabaseSettings

    down = DatabaseSettings(url="postgresql://reader:pw@127.0.0.1:1/nowhere")
    settings = settings_for(server_dir, api_keys=KEYS, databases={"remote": down})
    with (
        live_server(settings, model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as client,
    ):
        anonymous = client.get("/api/ready")
        keyed = client.get("/api/ready", headers=as_user(BOB))
    assert anonymous.status_code == keyed.status_code == 503
    assert anonymous.json()["checks"]["database:remote"] == {"ok": False}
    assert "127.0.0.1:1" not in anonymous.text
    error = keyed.json()["checks"]["database:remote"]["error"]
    assert error["code"] == "database_unreachable" and "127.0.0.1:1" in error["message"]
    assert "pw@" not in keyed.text
