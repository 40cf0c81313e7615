"""Small helpers of the chat UI tests: open the app, ask a question and wait for its answer."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

ANSWER_TIMEOUT_MS = 60_000


def open_app(page: Any, url: str) -> Any:
    """Load the UI and wait until it has asked the server for its databases and models."""
    page.goto(url)
    expect(page.locator("#db-picker option").first).to_be_attached()
    return page


def send(page: Any, question: str) -> Any:
    """Type a question and press Enter; the new turn's locator (not waited for)."""
    before = page.locator(".turn").count()
    page.locator("#question").fill(question)
    page.locator("#question").press("Enter")
    turn = page.locator(".turn").nth(before)
    expect(turn).to_be_attached()
    return turn


def finished(turn: Any, status: str | None = "answered") -> Any:
    """Wait until the turn got its done event (data-status set), optionally a given status,
    and its stream closed (the Send button is enabled again: the server has recorded the turn
    and released the session, so the next question is accepted)."""
    expect(turn).to_have_attribute(
        "data-status", status or re.compile(r".+"), timeout=ANSWER_TIMEOUT_MS
    )
    expect(turn.page.locator("#send")).to_be_enabled(timeout=ANSWER_TIMEOUT_MS)
    return turn


def ask(page: Any, question: str, status: str | None = "answered") -> Any:
    """Send a question and wait for its answer."""
    return finished(send(page, question), status)


def session_of(page: Any) -> str:
    """The session id in the page's URL (#session=<id>)."""
    match = re.search(r"#session=([^&]+)", page.url)
    assert match, f"no session in {page.url}"
    return match.group(1)


def column(turn: Any, index: int) -> list[str]:
    """The texts of one column of the turn's result table (the page shown)."""
    cells: list[str] = turn.locator(
        f"table.result tbody tr td:nth-child({index + 1})"
    ).all_inner_texts()
    return cells
