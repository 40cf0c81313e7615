"""Property tests of the HTTP API from its own OpenAPI document: schemathesis generates requests,
valid and invalid, for every operation and sends them to one live server over a real socket; no
input may get a 5xx, and every chat stream that starts must run to its `done` event.

Random ids only ever reach the "not found" branches, so a second round fixes the path (and body)
ids to a session that exists, with a finished turn that ran SQL: rename, traces, export, feedback,
replay and, last, delete then run on real records.

schemathesis' pytest integration (`from_fixture(...).parametrize()`) sets `Function._nodeid`,
which pytest 9 no longer has; each operation runs as a subtest with a Hypothesis test over
`operation.as_strategy(mode)` instead."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from server.settings import Settings
from tests.server.live_server import LiveServer, live_server

EXAMPLES = 20  # per operation and generation mode, and again per operation on the real session
TIMEOUT_S = 60
# Every operation of the API (so one that vanishes from the document is noticed too).
OPERATIONS = {
    "POST /api/chat",
    "GET /api/chat/events",
    "GET /api/sessions",
    "GET /api/sessions/{session_id}",
    "PATCH /api/sessions/{session_id}",
    "DELETE /api/sessions/{session_id}",
    "GET /api/traces/{session_id}",
    "GET /api/traces/{session_id}/{turn}",
    "POST /api/feedback",
    "GET /api/databases",
    "GET /api/schema/{db}",
    "GET /api/export/{session_id}/{turn}.{fmt}",
    "GET /api/health",
    "GET /api/ready",
    "GET /api/audit",
    "GET /api/info",
    "GET /api/models",
}
# Operations that name a session, database or turn: fuzzed again with ids that exist.
ON_REAL_RECORDS = (
    "POST /api/chat",
    "GET /api/chat/events",
    "GET /api/sessions/{session_id}",
    "PATCH /api/sessions/{session_id}",
    "GET /api/traces/{session_id}",
    "GET /api/traces/{session_id}/{turn}",
    "POST /api/feedback",
    "GET /api/schema/{db}",
    "GET /api/export/{session_id}/{turn}.{fmt}",
    "DELETE /api/sessions/{session_id}",  # last: it removes the session
)


@pytest.fixture(scope="module")
def fuzzed_server(
    prepared_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server for the module, over its own copy of the prepared data directory, with the
    builtin model (offline, real SQL) and rate limits no generated burst reaches."""
    data = tmp_path_factory.mktemp("schemathesis") / "data"
    shutil.copytree(prepared_dir, data)
    config = Settings(
        data_dir=data,
        knowledge_dir=data / "knowledge",
        rate_limit_per_minute=1_000_000,
        rate_limit_burst=1_000_000,
    )
    with live_server(config) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: LiveServer) -> Any:
    """The live server's /openapi.json; generated requests go to the same server. Chat streams
    are read to their end (schemathesis stops after 20 events by default)."""
    config = schemathesis.Config.from_dict(
        {"max-stream-events": 100_000, "request-timeout": TIMEOUT_S}
    )
    return schemathesis.openapi.from_url(
        f"{fuzzed_server.url}/openapi.json", config=config, timeout=TIMEOUT_S
    )


def _check_stream(response: schemathesis.Response) -> None:
    """A chat stream that started ends with `done`, without schemathesis cutting it short."""
    if response.status_code != 200:
        return
    if "text/event-stream" not in (response.headers.get("content-type") or [""])[0]:
        return
    assert not response.stream_cut_short, "the event stream did not end within the timeout"
    events = [line for line in response.text.splitlines() if line.startswith("event:")]
    assert events and events[-1] == "event: done", events[-3:]


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    session: requests.Session,
    real: dict[str, Any] | None = None,
) -> None:
    """Send EXAMPLES generated requests; with `real`, its ids replace the generated ones."""
    strategy = operation.as_strategy(generation_mode=mode)
    if real is not None:
        names = {p.name for p in operation.path_parameters}
        fixed = {k: v for k, v in real.items() if k in names}
        replay = [p.name for p in operation.headers if p.name.lower() == "last-event-id"]
        reconnect = replay and operation.method.upper() == "GET"
        headers = {replay[0]: real["event_id"]} if reconnect else None
        strategy = operation.as_strategy(
            generation_mode=mode, path_parameters=fixed or None, headers=headers
        ).map(lambda case: _real_body(case, real))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            session=session, checks=[not_a_server_error], timeout=TIMEOUT_S
        )
        _check_stream(response)

    run()


def _real_body(case: schemathesis.Case, real: dict[str, Any]) -> schemathesis.Case:
    if isinstance(case.body, dict):
        if "session_id" in case.body or case.operation.label == "POST /api/chat":
            case.body["session_id"] = real["session_id"]
        if "turn" in case.body:
            case.body["turn"] = real["turn"]
    return case


def _real_records(server: LiveServer, session: requests.Session) -> dict[str, Any]:
    """Ask one question with SQL in its answer: its session, turn and last event id."""
    databases = session.get(f"{server.url}/api/databases", timeout=TIMEOUT_S).json()
    response = session.post(
        f"{server.url}/api/chat",
        json={"message": "How many customers are there per segment?"},
        timeout=TIMEOUT_S,
    )
    assert response.status_code == 200, response.text
    ids = [line[4:] for line in response.text.splitlines() if line.startswith("id: ")]
    session_id, turn, _ = ids[-1].split(":")
    trace = session.get(f"{server.url}/api/traces/{session_id}/{turn}", timeout=TIMEOUT_S)
    assert trace.json()["status"] == "answered", trace.text
    return {
        "session_id": session_id,
        "turn": int(turn),
        "db": databases[0]["name"],
        "event_id": ids[len(ids) // 2],
    }


# The server runs in this process, so its threads move the global `random` state while
# Hypothesis draws a case, which Hypothesis reports as a strategy using `random`.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:"
    "hypothesis.errors.HypothesisDeprecationWarning"
)
def test_no_generated_request_gets_a_server_error(
    api_schema: Any, fuzzed_server: LiveServer, subtests: pytest.Subtests
) -> None:
    operations = {result.ok().label: result.ok() for result in api_schema.get_all_operations()}
    assert set(operations) == OPERATIONS
    with requests.Session() as session:
        for label, operation in operations.items():
            modes = [GenerationMode.POSITIVE]
            if any(True for _ in operation.iter_parameters()) or operation.body:
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:
                with subtests.test(operation=label, mode=mode.value):
                    _fuzz(operation, mode, session)
        real = _real_records(fuzzed_server, session)
        for label in ON_REAL_RECORDS:
            with subtests.test(operation=label, mode="positive", on="real records"):
                _fuzz(operations[label], GenerationMode.POSITIVE, session, real)
