"""Bad requests get a clear JSON error (code, message quoting the value, hint), never a traceback
or a 5xx, and nothing is started or written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .instant_model import InstantModel
from .live_server import LiveServer, live_server
from .test_http_chat import settings_for


@pytest.fixture(scope="module")
def srv(prepared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module; no request here should leave anything behind."""
    import shutil

    data = tmp_path_factory.mktemp("bad-input") / "data"
    shutil.copytree(prepared_dir, data)
    model = InstantModel()
    with live_server(settings_for(data), model_factory=lambda spec: model) as server:
        yield server


def error_of(resp: httpx.Response, status: int, code: str) -> dict[str, str]:
    """The error body, after checking status and code."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error: dict[str, str] = resp.json()["error"]
    assert error["code"] == code, error
    assert error["message"] and "Traceback" not in resp.text
    return error


def post_chat(srv: LiveServer, **kwargs: object) -> httpx.Response:
    """One POST /api/chat, read whole."""
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        return client.post("/api/chat", **kwargs)  # type: ignore[arg-type]


def test_malformed_json(srv: LiveServer) -> None:
    resp = post_chat(srv, content=b'{"message": "hi"', headers={"content-type": "application/json"})
    error = error_of(resp, 422, "invalid_argument")
    assert "not valid JSON" in error["message"] and "message" in error["hint"]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({}, "Field 'message' is required."),
        ({"message": 42}, "Field 'message' has value 42"),
        ({"message": ["a"]}, "Field 'message' has value ['a']"),
        ({"message": "hi", "cache": "sometimes"}, "Field 'cache' has value 'sometimes'"),
        ({"message": "hi", "session_id": "a/b"}, "Field 'session_id' has value 'a/b'"),
        ({"message": "hi", "extra": 1}, "Field 'extra' has value 1"),
        ({"message": ""}, "Field 'message' has value ''"),
    ],
)
def test_missing_or_wrong_types(srv: LiveServer, body: dict[str, object], text: str) -> None:
    error = error_of(post_chat(srv, json=body), 422, "invalid_argument")
    assert error["message"].startswith(text)
    assert error["hint"] == "See the request schema at /docs."


def test_blank_and_oversized_questions(srv: LiveServer) -> None:
    blank = error_of(post_chat(srv, json={"message": "   "}), 400, "invalid_argument")
    assert blank["message"] == "The question is empty."
    long = error_of(post_chat(srv, json={"message": "x" * 20_000}), 422, "invalid_argument")
    assert "at most 4000 characters" in long["message"]


def test_a_10_mb_body_is_refused_early(srv: LiveServer) -> None:
    body = b'{"message": "' + b"x" * 10_000_000 + b'"}'
    error = error_of(
        post_chat(srv, content=body, headers={"content-type": "application/json"}), 413, "too_large"
    )
    assert "10,000,015 bytes" not in error["message"]  # the length is quoted as sent
    assert "10000015 bytes" in error["message"] and "1,000,000" in error["message"]


def test_a_chunked_body_over_the_limit_is_refused(srv: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"message": "'
        for _ in range(30):
            yield b"x" * 100_000
        yield b'"}'

    resp = post_chat(srv, content=chunks(), headers={"content-type": "application/json"})
    assert "over 1000000 bytes" in error_of(resp, 413, "too_large")["message"]


def test_unknown_session(srv: LiveServer) -> None:
    error = error_of(
        post_chat(srv, json={"message": "hi", "session_id": "nope-123"}), 404, "not_found"
    )
    assert error["message"] == "Session 'nope-123' not found."


@pytest.mark.parametrize(
    "db",
    [
        "nosuch",
        "sqlite:///etc/passwd",
        "postgresql://postgres@127.0.0.1/test",
        "/etc/passwd",
        "../sample",
    ],
)
def test_db_values_must_be_configured_names(srv: LiveServer, db: str) -> None:
    error = error_of(post_chat(srv, json={"message": "hi", "db": db}), 400, "unknown_database")
    assert f"Unknown database '{db}'" in error["message"] and "Known: sample" in error["message"]


@pytest.mark.parametrize(
    "model",
    ["openai/gpt-4o", "http://evil.example/v1", "/tmp/model.gguf", "ollama/llama3", "builtinx"],
)
def test_model_values_must_be_configured_names(srv: LiveServer, model: str) -> None:
    error = error_of(
        post_chat(srv, json={"message": "hi", "model": model}), 400, "invalid_argument"
    )
    assert error["message"] == f"Unknown model '{model}'."
    assert "builtin" in error["hint"]


def test_bad_last_event_id(srv: LiveServer) -> None:
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        garbage = client.get("/api/chat/events", headers={"Last-Event-ID": "garbage"})
        none = client.get("/api/chat/events")
        other = client.get("/api/chat/events", headers={"Last-Event-ID": "someone:1:3"})
    assert (
        "is not '<session>:<turn>:<seq>'" in error_of(garbage, 400, "invalid_argument")["message"]
    )
    error_of(none, 400, "invalid_argument")
    error_of(other, 404, "not_found")


def test_other_bad_requests(srv: LiveServer) -> None:
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        unknown_route = client.get("/api/nothing-here")
        wrong_method = client.put("/api/chat", json={"message": "hi"})
        bad_turn = client.get("/api/traces/abc/0")
        bad_format = client.get("/api/export/abc/1.pdf")
        bad_rating = client.post(
            "/api/feedback", json={"session_id": "abc", "turn": 1, "rating": "meh"}
        )
        empty_title = client.patch("/api/sessions/abc", json={"title": ""})
        bad_limit = client.get("/api/sessions", params={"limit": 0})
        unknown_schema = client.get("/api/schema/nosuch")
        sessions = client.get("/api/sessions").json()
    error_of(unknown_route, 404, "not_found")
    assert wrong_method.status_code == 405
    for resp in (bad_turn, bad_format, bad_rating, empty_title, bad_limit):
        error_of(resp, 422, "invalid_argument")
    error_of(unknown_schema, 400, "unknown_database")
    assert sessions == []  # none of the refused requests created anything
