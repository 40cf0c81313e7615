"""Databases and schema, exports, feedback, health/readiness (with a database that goes down),
Prometheus metrics and structured logs."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from server.logs import configure_logging
from server.settings import DatabaseSettings
from tests.graphs.tcp_proxy import TcpProxy
from tests.service_dbs import (
    HOST,
    PG_PORT,
    pg_parcels_schema,
    postgres_available,
    require_or_skip,
)

from .instant_model import InstantModel
from .live_server import chat, live_server
from .test_http_chat import settings_for


def test_databases_never_show_urls(server_dir: Path, instant: InstantModel) -> None:
    secret_url = "postgresql://reader:s3cret-pw@127.0.0.1:1/nowhere"
    settings = settings_for(
        server_dir, databases={"remote": DatabaseSettings(url=secret_url, description="Far away")}
    )
    with (
        live_server(settings, model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        listed = client.get("/api/databases")
        schema = client.get("/api/schema/sample", params={"detail": "names", "limit": 3}).json()
        full = client.get("/api/schema/sample", params={"pattern": "order*"}).json()
    assert listed.json() == [
        {"name": "remote", "dialect": "postgres", "description": "Far away", "default": True},
        {
            "name": "sample",
            "dialect": "sqlite",
            "description": listed.json()[1]["description"],
            "default": False,
        },
    ]
    assert "s3cret" not in listed.text and "reader" not in listed.text
    assert [t["name"] for t in schema["tables"]] == ["categories", "customers", "employees"]
    assert schema["next_offset"] == 3 and schema["total_tables"] >= 8
    assert {t["name"] for t in full["tables"]} == {"order_items", "orders", "order_totals"}
    assert any(c["name"] == "order_date" for t in full["tables"] for c in t["columns"])


def test_export_csv_json_xlsx_rerun_with_the_export_cap(
    server_dir: Path, sample_path: Path
) -> None:
    sql = "SELECT customer_id, name, country FROM customers ORDER BY customer_id"
    model = InstantModel(sql=sql)
    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: model) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        events = chat(client, {"message": "List the customers"})
        sid = events[0].data["session_id"]
        table = next(e.data for e in events if e.event == "table")
        as_csv = client.get(f"/api/export/{sid}/1.csv")
        as_json = client.get(f"/api/export/{sid}/1.json")
        as_xlsx = client.get(f"/api/export/{sid}/1.xlsx")
        missing = client.get(f"/api/export/{sid}/2.csv")
        audit = client.get("/api/audit").json()["entries"]
    assert table["row_count"] == 1000 and table["truncated"] is True  # the chat's row cap
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["customer_id", "name", "country"]
    assert len(rows) == 1 + 1500  # every customer: the export cap is higher
    assert as_csv.headers["content-disposition"] == f'attachment; filename="sqlsage-{sid}-1.csv"'
    assert as_csv.headers["x-row-count"] == "1500" and as_csv.headers["x-truncated"] == "false"
    body = as_json.json()
    assert body["row_count"] == 1500 and len(body["rows"]) == 1500
    assert body["rows"][0] == [int(rows[1][0]), rows[1][1], rows[1][2]]
    sheet = load_workbook(io.BytesIO(as_xlsx.content), read_only=True).active
    assert sheet is not None
    assert [list(r) for r in sheet.iter_rows(values_only=True)][:2] == [
        ["customer_id", "name", "country"],
        [int(rows[1][0]), rows[1][1], rows[1][2]],
    ]
    assert missing.status_code == 404
    assert [a["source"] for a in audit] == ["export", "export", "export", "turn"]


def test_feedback_up_saves_an_example_down_is_kept(server_dir: Path, instant: InstantModel) -> None:
    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        events = chat(client, {"message": "How many customers are in each segment?"})
        sid = events[0].data["session_id"]
        up = client.post("/api/feedback", json={"session_id": sid, "turn": 1, "rating": "up"})
        down = client.post(
            "/api/feedback",
            json={"session_id": sid, "turn": 1, "rating": "down", "comment": "wrong grouping"},
        )
        state = srv.state
        resources = state.resources
        docs = resources.index.documents(resources.database("sample"))
        kept = state.feedback.list(rating="down")
    assert up.json()["example_saved"] is True and down.json()["example_saved"] is False
    examples = [d for d in docs if d.kind == "example"]
    assert any("How many customers are in each segment?" in d.text for d in examples)
    assert kept[0]["comment"] == "wrong grouping" and kept[0]["session_id"] == sid


def test_metrics_after_a_turn(server_dir: Path, instant: InstantModel) -> None:
    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        chat(client, {"message": "Customers per segment?"})
        client.get("/api/sessions/nope")
        text = client.get("/metrics").text
    for line in (
        'sqlsage_turns_total{status="answered"} 1.0',
        'sqlsage_tool_calls_total{outcome="ok",tool="run_sql"} 1.0',
        'sqlsage_tool_calls_total{outcome="ok",tool="build_chart"} 1.0',
        'sqlsage_model_tokens_total{kind="input"} 400.0',
        'sqlsage_model_tokens_total{kind="output"} 80.0',
        'sqlsage_http_requests_total{method="POST",route="/api/chat",status="200"} 1.0',
        'sqlsage_http_requests_total{method="GET",route="/api/sessions/{session_id}",status="404"} 1.0',
        'sqlsage_cache_lookups_total{result="miss"} 1.0',
        'sqlsage_errors_total{code="not_found"} 1.0',
        "sqlsage_active_streams 0.0",
        "sqlsage_running_turns 0.0",
    ):
        assert line in text, line
    assert 'sqlsage_tool_seconds_count{tool="semantic_search"} 1.0' in text
    assert 'sqlsage_http_request_seconds_bucket{le="+Inf",method="POST",route="/api/chat"}' in text


def test_logs_are_json_with_request_ids_and_no_secrets(
    server_dir: Path, instant: InstantModel
) -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    key = "alice-secret-key-42"
    settings = settings_for(server_dir, api_keys=f"{key}=alice")
    try:
        with (
            live_server(settings, model_factory=lambda spec: instant) as srv,
            httpx.Client(base_url=srv.url, timeout=60) as client,
        ):
            auth = {"Authorization": f"Bearer {key}", "X-Request-ID": "req-test-1"}
            events = chat(client, {"message": "Customers per segment?"}, headers=auth)
            sid = events[0].data["session_id"]
            client.delete(f"/api/sessions/{sid}", headers=auth)
    finally:
        logging.getLogger("sqlsage").handlers = []
        for name in ("uvicorn", "uvicorn.error"):
            logging.getLogger(name).handlers = []
            logging.getLogger(name).propagate = True
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [r for r in lines if r["msg"] == "request"]
    assert requests and all(r["request_id"] == "req-test-1" for r in requests)
    chat_line = next(r for r in requests if r["route"] == "/api/chat")
    assert chat_line["user"] == "alice" and chat_line["status"] == 200
    deleted = next(r for r in lines if r["msg"] == "session deleted")
    assert deleted["session_id"] is None and deleted["deleted"] == sid
    assert key not in stream.getvalue()
    assert "Regular" not in stream.getvalue()  # no result rows (segment values) in logs


@pytest.fixture
def depot(server_dir: Path) -> Iterator[tuple[Path, TcpProxy, str]]:
    """A PostgreSQL schema reached through a proxy the test can cut: (data dir, proxy, schema)."""
    require_or_skip(postgres_available(), "PostgreSQL")
    with pg_parcels_schema("sqlsage_http") as schema:
        proxy = TcpProxy((HOST, PG_PORT))
        proxy.start()
        try:
            yield server_dir, proxy, schema
        finally:
            proxy.cut()


@pytest.mark.postgres
def test_database_down_turn_errors_cleanly_and_ready_says_which(
    depot: tuple[Path, TcpProxy, str],
) -> None:
    data_dir, proxy, schema = depot
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test"
    settings = settings_for(
        data_dir, databases={"depot": DatabaseSettings(url=url, schemas=[schema], timeout_s=5)}
    )
    model = InstantModel(sql="SELECT region, parcels FROM parcels ORDER BY region")
    with (
        live_server(settings, model_factory=lambda spec: model) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        first = chat(client, {"message": "Parcels per region?", "db": "depot"})
        sid = first[0].data["session_id"]
        assert client.get("/api/ready").status_code == 200
        proxy.cut()
        # cache: false, or the cached result of the first turn would answer it.
        down = chat(client, {"message": "and now?", "session_id": sid, "cache": False})
        ready = client.get("/api/ready")
        proxy.start()
        back = chat(client, {"message": "and now?", "session_id": sid, "cache": False})
        ready_again = client.get("/api/ready")
        detail = client.get(f"/api/sessions/{sid}").json()
    assert first[-1].data["status"] == "answered"
    errors = [e.data for e in down if e.event == "error"]
    assert errors and errors[0]["code"] == "database_unreachable"
    assert "password" not in json.dumps(errors)
    assert down[-1].event == "done" and down[-1].data["status"] == "failed"
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database:depot"]["ok"] is False
    assert checks["database:depot"]["error"]["code"] == "database_unreachable"
    assert checks["database:sample"]["ok"] is True and checks["sessions"]["ok"] is True
    assert back[-1].data["status"] == "answered"
    assert ready_again.status_code == 200
    assert [m["status"] for m in detail["messages"]] == ["answered", "failed", "answered"]


def test_health_and_home(server_dir: Path, instant: InstantModel) -> None:
    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        health = client.get("/api/health")
        home = client.get("/")
        docs = client.get("/docs")
        info = client.get("/api/info").json()
        models = client.get("/api/models").json()
        script = client.get("/static/app.js")
        openapi = client.get("/openapi.json").json()
    assert health.json() == {"status": "ok"} and health.headers["x-request-id"]
    assert "<title>sqlsage</title>" in home.text and "/static/app.js" in home.text
    assert docs.status_code == 200
    assert info == {
        "name": "sqlsage",
        "version": "0.1.0",
        "auth_required": False,
        "max_question_chars": 4000,
        "max_title_chars": 200,
    }
    assert models == {"models": ["builtin"], "default": "builtin"}
    assert script.status_code == 200 and "sseEvents" in script.text
    assert {"/api/chat", "/api/sessions", "/api/feedback", "/api/ready"} <= set(openapi["paths"])


@pytest.mark.parametrize("origins", ["", "https://app.example"])
def test_cors_is_closed_unless_configured(
    server_dir: Path, instant: InstantModel, origins: str
) -> None:
    settings = settings_for(server_dir, cors_origins=origins)
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization",
    }
    with (
        live_server(settings, model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as client,
    ):
        allowed = client.options("/api/chat", headers=preflight)
        other = client.options("/api/chat", headers={**preflight, "Origin": "https://evil.example"})
        simple = client.get("/api/health", headers={"Origin": "https://app.example"})
    if origins:
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-allow-origin" not in other.headers
    else:
        assert "access-control-allow-origin" not in allowed.headers
        assert "access-control-allow-origin" not in simple.headers


def test_collector_settings_hold_while_serving_and_are_undone_after(
    server_dir: Path, instant: InstantModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import time

    import server.app_state as app_state
    from server.http import SERVER_GC_THRESHOLDS

    warm = app_state._warm_index

    def slow_warm_up(resources: object) -> None:
        time.sleep(1.5)  # still warming up when the server is told to stop
        warm(resources)  # type: ignore[arg-type]

    monkeypatch.setattr(app_state, "_warm_index", slow_warm_up)
    before = gc.get_threshold()
    with (
        live_server(settings_for(server_dir), model_factory=lambda spec: instant) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as client,
    ):
        assert client.get("/api/health").status_code == 200
        assert gc.get_threshold() == SERVER_GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    # Shut down (the index warm-up included): nothing stays frozen in this process.
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
