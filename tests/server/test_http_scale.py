"""Scale-out: two `sqlsage serve` processes on different ports, one PostgreSQL checkpointer and
session database, one Redis (cache, rate limits, event replay, turn leases). A conversation
started on one replica continues on the other; replay and cache work across them. Plus the
serve command's own checks."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.service_dbs import HOST, PG_PORT, postgres_available, require_or_skip

from .live_server import chat, iter_sse

SQLSAGE = str(Path(sys.executable).with_name("sqlsage"))
REDIS_URL = "redis://127.0.0.1:6379/7"
PG_URL = f"postgresql://postgres@{HOST}:{PG_PORT}/test"


def redis_available() -> bool:
    """True when Redis answers PING within 2 s."""
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without SQLSAGE_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLSAGE_")}
    return env | extra


def wait_ready(url: str, proc: subprocess.Popen[str], timeout_s: float = 90) -> None:
    """Wait until the server answers /api/ready with 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/api/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} not ready in {timeout_s} s")


@pytest.fixture
def replicas(prepared_dir: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two server processes sharing PostgreSQL (checkpoints, sessions) and Redis."""
    require_or_skip(postgres_available(), "PostgreSQL")
    require_or_skip(redis_available(), "Redis", "127.0.0.1:6379")
    procs: list[subprocess.Popen[str]] = []
    logs: list[Any] = []
    urls = []
    try:
        for name in ("a", "b"):
            data = tmp_path / name
            shutil.copytree(prepared_dir, data)
            port = free_port()
            env = clean_env(
                SQLSAGE_DATA_DIR=str(data),
                SQLSAGE_CHECKPOINT_URL=PG_URL,
                SQLSAGE_REDIS_URL=REDIS_URL,
                SQLSAGE_API_KEYS="scale-key-0001=carol",
            )
            # Logs go to a file: an unread pipe fills up and blocks the server.
            log = (tmp_path / f"{name}.log").open("w")
            logs.append(log)
            proc = subprocess.Popen(
                [SQLSAGE, "serve", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            wait_ready(url, proc)
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_a_conversation_moves_between_replicas(replicas: tuple[str, str]) -> None:
    one, two = replicas
    auth = {"Authorization": "Bearer scale-key-0001"}
    with (
        httpx.Client(base_url=one, timeout=120, headers=auth) as a,
        httpx.Client(base_url=two, timeout=120, headers=auth) as b,
    ):
        first = chat(a, {"message": "What was the total revenue by year?"})
        sid = first[0].data["session_id"]
        follow = chat(b, {"message": "and only for 2023?", "session_id": sid})
        # Replica B replays what replica A streamed (Redis event buffer).
        with b.stream("GET", "/api/chat/events", headers={"Last-Event-ID": first[3].id or ""}) as r:
            replayed = list(iter_sse(r))
        # The same SQL on B is a hit in the shared Redis cache.
        again = chat(b, {"message": "What was the total revenue by year?"})
        detail_a = a.get(f"/api/sessions/{sid}").json()
        detail_b = b.get(f"/api/sessions/{sid}").json()
        a.delete(f"/api/sessions/{sid}")
    assert first[-1].data["status"] == "answered"
    assert follow[0].id == f"{sid}:2:1"
    assert follow[-1].data["status"] == "answered"
    sql2 = follow[-1].data["sql"]
    assert "2023" in sql2, sql2
    assert [e.id for e in replayed] == [e.id for e in first[4:]]
    run_steps = [e.data for e in again if e.event == "step" and e.data["name"] == "run_sql"]
    assert any("(cached)" in str(s.get("summary")) for s in run_steps)
    assert detail_a == detail_b
    assert [m["question"] for m in detail_b["messages"]] == [
        "What was the total revenue by year?",
        "and only for 2023?",
    ]


@pytest.mark.postgres
def test_one_turn_at_a_time_per_session_across_replicas(replicas: tuple[str, str]) -> None:
    import asyncio

    one, two = replicas
    auth = {"Authorization": "Bearer scale-key-0001"}
    with httpx.Client(base_url=one, timeout=120, headers=auth) as a:
        created = chat(a, {"message": "How many customers are there?"})
    sid = created[0].data["session_id"]

    async def both() -> list[int]:
        async def post(url: str) -> int:
            async with httpx.AsyncClient(base_url=url, timeout=120, headers=auth) as client:
                body = {"message": "How many orders are there?", "session_id": sid}
                async with client.stream("POST", "/api/chat", json=body) as resp:
                    await resp.aread()
                    return resp.status_code

        return list(await asyncio.gather(*(post(u) for u in (one, two, one, two))))

    codes = asyncio.run(both())
    # A turn held by some other replica (its lease in the shared Redis): both refuse.
    lease = redis.Redis.from_url(REDIS_URL)
    try:
        lease.set(f"sqlsage:lease:{sid}", "a-third-replica", px=60_000)
        busy = [
            httpx.post(
                f"{url}/api/chat", json={"message": "and now?", "session_id": sid},
                headers=auth, timeout=60,
            )
            for url in (one, two)
        ]  # fmt: skip
        lease.delete(f"sqlsage:lease:{sid}")
    finally:
        lease.close()
    with httpx.Client(base_url=two, timeout=120, headers=auth) as b:
        after = chat(b, {"message": "How many orders are there?", "session_id": sid})
        turns = b.get(f"/api/sessions/{sid}").json()["turns"]
    assert set(codes) <= {200, 409} and 200 in codes
    assert [r.status_code for r in busy] == [409, 409]
    assert all(r.json()["error"]["code"] == "session_busy" for r in busy)
    assert after[-1].data["status"] == "answered"
    assert turns == 1 + codes.count(200) + 1  # every accepted turn counted, none refused one


def test_serve_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    done = subprocess.run(
        [SQLSAGE, "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=clean_env(SQLSAGE_DATA_DIR=str(tmp_path / "d")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    out = done.stdout + done.stderr
    assert "Refusing to listen on '0.0.0.0' without API keys" in out
    assert "--insecure-no-auth" in out and "Traceback" not in out


def test_serve_reports_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [SQLSAGE, "serve", "--port", str(port)],
            env=clean_env(SQLSAGE_DATA_DIR=str(tmp_path / "d")),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2
    assert f"Cannot listen on 127.0.0.1:{port}" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--workers", "0"], "--workers 0 is out of range."),
        (["--db", "nosuch"], "Unknown database 'nosuch'. Known: sample."),
    ],
)
def test_serve_bad_options(tmp_path: Path, args: list[str], text: str) -> None:
    done = subprocess.run(
        [SQLSAGE, "serve", "--port", str(free_port()), *args],
        env=clean_env(SQLSAGE_DATA_DIR=str(tmp_path / "d")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and text in done.stdout + done.stderr


def test_serve_prints_its_url_and_answers(tmp_path: Path, prepared_dir: Path) -> None:
    data = tmp_path / "d"
    shutil.copytree(prepared_dir, data)
    port = free_port()
    proc = subprocess.Popen(
        [SQLSAGE, "serve", "--port", str(port)],
        env=clean_env(SQLSAGE_DATA_DIR=str(data)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc)
        with httpx.Client(base_url=url, timeout=60) as client:
            events = chat(client, {"message": "How many customers?"})
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert f"sqlsage is serving on {url}" in output.splitlines()[0]
    assert events[-1].data["status"] == "answered"
    assert "1,500" in events[-1].data["answer"]
    assert "Traceback" not in output, output


@pytest.mark.slow
def test_serve_with_two_workers(tmp_path: Path, prepared_dir: Path) -> None:
    data = tmp_path / "d"
    shutil.copytree(prepared_dir, data)
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [SQLSAGE, "serve", "--port", str(port), "--workers", "2", "--db", "sample"],
        env=clean_env(SQLSAGE_DATA_DIR=str(data)),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc)
        with httpx.Client(base_url=url, timeout=60) as client:
            sessions = {
                chat(client, {"message": "How many customers?"})[-1].data["status"]
                for _ in range(4)
            }
            listed = client.get("/api/sessions").json()
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert sessions == {"answered"} and len(listed) == 4
    assert output.count("Started server process") == 2, output[-2000:]
    assert "Traceback" not in output


def test_serve_a_database_given_by_url(tmp_path: Path, prepared_dir: Path) -> None:
    data = tmp_path / "d"
    shutil.copytree(prepared_dir, data)
    sample = data / "sample.sqlite"
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [SQLSAGE, "serve", "--port", str(port), "--db", f"sqlite:///{sample}"],
        env=clean_env(SQLSAGE_DATA_DIR=str(data)),
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc)
        listed = httpx.get(f"{url}/api/databases", timeout=30).json()
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    by_name = {d["name"]: d for d in listed}
    assert by_name["db1"]["default"] is True and by_name["db1"]["dialect"] == "sqlite"
    assert str(sample) not in json.dumps(listed)  # a URL is configuration, never shown
