"""The chat UI given bad input: an oversized message, HTML/JS in a question and in data values,
the server going away mid-stream, two tabs on one session, a database that is down."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from server.settings import DatabaseSettings
from tests.server.instant_model import InstantModel
from tests.server.live_server import LiveServer, live_server
from tests.server.test_http_chat import settings_for

from .conftest import ROOT
from .ui_helpers import ask, column, finished, open_app, send, session_of

PAYLOAD = "<img src=x onerror=alert(1)>"
SEGMENTS = "How many customers are there in each segment?"
REGIONS = "How many customers are there in each region?"


def test_a_20000_character_message_is_refused_by_page_and_server(
    builtin_server: LiveServer, page: Any, shot: Any
) -> None:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.url.endswith("/api/chat") else None)
    open_app(page, builtin_server.url)
    long = "x" * 20_000
    page.locator("#question").fill(long)
    page.locator("#question").press("Enter")
    error = page.locator("#composer-error")
    expect(error).to_be_visible()
    expect(error).to_have_text(
        "Your question is 20,000 characters long; the limit is 4,000. Shorten it and send again."
    )
    assert page.locator(".turn").count() == 0 and posts == []
    assert page.locator("#question").input_value() == long  # kept, to be shortened
    shot(page, "refused-client-side")
    # The server refuses it too (a client that skips the check): 422 with a clear message.
    status, body = page.evaluate(
        """async (message) => {
             const r = await fetch('/api/chat', { method: 'POST',
               headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message }) });
             return [r.status, await r.json()];
           }""",
        long,
    )
    assert status == 422 and body["error"]["code"] == "invalid_argument"
    assert "at most 4000 characters" in body["error"]["message"]
    # Typing again clears the message; a question within the limit goes through.
    page.locator("#question").fill("x" * 4_000)
    expect(error).to_be_hidden()


@pytest.fixture
def xss_server(server_dir: Path) -> Iterator[LiveServer]:
    """The builtin model on a sample whose 'Latin America' region is named with HTML that would
    run script if it were ever parsed as HTML."""
    with sqlite3.connect(server_dir / "sample.sqlite") as conn:
        conn.execute("UPDATE regions SET name = ? WHERE name = 'Latin America'", (PAYLOAD,))
    conn.close()
    with live_server(settings_for(server_dir)) as server:
        yield server


def test_html_in_questions_and_data_values_is_shown_as_text(
    xss_server: LiveServer, page: Any, shot: Any
) -> None:
    open_app(page, xss_server.url)
    turn = ask(page, REGIONS)
    # The value is a table cell's text, literally; no <img> element was made from it.
    assert PAYLOAD in column(turn, 0)
    cell = turn.locator("table.result td", has_text=PAYLOAD)
    expect(cell).to_have_count(1)
    assert cell.inner_html() == "&lt;img src=x onerror=alert(1)&gt;"
    expect(turn.locator(".answer")).to_contain_text(PAYLOAD)
    expect(turn.locator(".chart-card svg")).to_contain_text(PAYLOAD)  # an axis label, as text
    # A question carrying a script and an image handler.
    question = f"{REGIONS} <script>window.__pwned = 1</script>{PAYLOAD}"
    second = ask(page, question, status=None)
    expect(second.locator(".question")).to_have_text(question)
    shot(page, "html-as-text", full_page=True)
    expect(page.locator(f"#session-list .session-open[title='{REGIONS}']")).to_be_attached()
    # Drawn again from the session's record after a reload: still text.
    page.reload()
    expect(page.locator(".turn")).to_have_count(2)
    expect(page.locator(".turn").nth(1).locator(".question")).to_have_text(question)
    assert PAYLOAD in column(page.locator(".turn").first, 0)
    for where in ("#messages", "#sidebar"):
        assert page.locator(f"{where} img, {where} script").count() == 0
    page.wait_for_timeout(200)  # an onerror handler would have fired by now
    assert page.evaluate("window.__pwned") is None
    # (the `context` fixture fails the test if any alert() dialog opened)


@pytest.fixture
def slow_two_tab_server(server_dir: Path) -> Iterator[LiveServer]:
    """A scripted model taking 0.6 s per reply: a turn lasts ~2.5 s."""
    model = InstantModel(delay_s=0.6)
    with live_server(settings_for(server_dir), model_factory=lambda spec: model) as server:
        yield server


def test_two_tabs_on_one_session(slow_two_tab_server: LiveServer, new_page: Any, shot: Any) -> None:
    first = open_app(new_page(), slow_two_tab_server.url)
    ask(first, "Customers per segment?")
    session = session_of(first)
    second = open_app(new_page(), f"{slow_two_tab_server.url}/#session={session}")
    expect(second.locator(".turn")).to_have_count(1)
    # The first tab asks a follow-up; the second asks too while that one is running.
    running = send(first, "And again?")
    expect(running.locator(".steps li").first).to_be_attached()
    refused = send(second, "Meanwhile, from the second tab?")
    error = refused.locator(".error-box")
    expect(error.locator(".message")).to_have_text(
        f"Session '{session}' is already answering a question."
    )
    expect(error.locator(".hint")).to_contain_text("answering in another tab or window")
    shot(second, "second-tab-busy")
    finished(running)
    # The second tab, reloaded, shows both answered turns of the session; and can ask now.
    second.reload()
    expect(second.locator(".turn")).to_have_count(2)
    expect(second.locator(".turn").nth(1).locator(".question")).to_have_text("And again?")
    ask(second, "And from the second tab now?")
    assert session_of(second) == session


def test_a_database_that_is_down_gets_a_readable_error(
    server_dir: Path, page: Any, shot: Any
) -> None:
    down = DatabaseSettings(url="postgresql+psycopg://nobody@127.0.0.1:9/gone", timeout_s=5)
    settings = settings_for(
        server_dir,
        databases={
            "sample": DatabaseSettings(url=f"sqlite:///{server_dir / 'sample.sqlite'}"),
            "down": down,
        },
        default_database="sample",
    )
    with live_server(settings) as srv:
        open_app(page, srv.url)
        page.locator("#db-picker").select_option("down")
        turn = ask(page, SEGMENTS, status=None)
        error = turn.locator(".error-box").first
        expect(error).to_be_visible()
        expect(error.locator(".message")).to_contain_text("Cannot reach database 'down'")
        assert "Traceback" not in page.locator("#messages").inner_text()
        shot(page, "database-down")


# ---- the server going away mid-stream -------------------------------------------------------


class ServerProcess:
    """tests/ui/server_proc.py in a process of its own, on a fixed port once known."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.log = log
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    def start(self, delay_s: float) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SQLSAGE_")}
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.ui.server_proc",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                    "--delay",
                    str(delay_s),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("LISTENING "):
                    self.port = int(line.split()[1])
                    return f"http://127.0.0.1:{self.port}"
                if not line:
                    break
            if self.proc.poll() is not None:
                break
        raise AssertionError(f"the server did not start: {self.log.read_text()[-2000:]}")

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM: uvicorn closes the streams and lets running turns finish, then exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout)
        self._close()

    def kill(self) -> None:
        """SIGKILL, if it still runs (the test's cleanup)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()


def test_server_going_away_mid_stream(
    server_dir: Path, tmp_path: Path, page: Any, shot: Any
) -> None:
    server = ServerProcess(server_dir, tmp_path / "server.log")
    try:
        url = server.start(delay_s=1.0)
        open_app(page, url)
        turn = send(page, "Customers per segment?")
        expect(turn.locator(".steps li").first).to_be_attached()
        assert turn.get_attribute("data-status") is None
        server.stop()  # mid-turn: the stream is cut; the turn finishes into the session database
        banner = page.locator("#banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("The connection to the server was lost. Reconnecting")
        shot(page, "server-gone")
        page.wait_for_timeout(1500)  # at least one reconnect attempt fails while it is down
        expect(banner).to_contain_text("attempt")
        server.start(delay_s=1.0)  # the same port and data: the page reconnects (Last-Event-ID)
        finished(turn)
        expect(banner).to_be_hidden()
        assert column(turn, 0) == ["Consumer", "Corporate", "Small Business"]
        expect(turn.locator(".answer")).to_contain_text("Customers per segment are in the table.")
        assert turn.locator(".error-box").count() == 0
        shot(page, "server-back")
    finally:
        server.kill()
