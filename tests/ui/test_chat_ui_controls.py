"""The chat UI's smaller controls in a real headless Chromium against the real server: renaming
and deleting sessions in the page (no browser prompt or confirm), copying the SQL to the
clipboard, thumbs-down, and the model picker (whose second model streams its reasoning into the
collapsible panel)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from playwright.sync_api import expect

from tests.server.instant_model import InstantModel
from tests.server.live_server import LiveServer, live_server
from tests.server.test_http_chat import settings_for

from .ui_helpers import ask, finished, open_app, send, session_of

SEGMENTS = "How many customers are there in each segment?"
REASONING = "The question asks for a count per segment, so I group the customers by segment."
PLAIN, THINKING = "scripted/plain", "scripted/thinking"


class ThinkingModel(InstantModel):
    """InstantModel whose every reply starts with streamed reasoning, as a reasoning model's
    provider sends it (reasoning_content chunks before the text and tool calls)."""

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        for word in REASONING.split(" "):
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="", additional_kwargs={"reasoning_content": word + " "}
                )
            )
        async for chunk in super()._astream(*args, **kwargs):
            yield chunk


@pytest.fixture(scope="module")
def two_model_server(
    prepared_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server offering two scripted models: the plain one by default, and one that reasons."""
    data = tmp_path_factory.mktemp("ui-models") / "data"
    shutil.copytree(prepared_dir, data)
    models = {PLAIN: InstantModel(), THINKING: ThinkingModel()}
    settings = settings_for(data, model=PLAIN, models=f"{PLAIN},{THINKING}")
    with live_server(settings, model_factory=lambda spec: models[spec]) as server:
        yield server


def _server_session(server: LiveServer, session: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        return client.get(f"/api/sessions/{session}")


def _answered_session(page: Any, server: LiveServer) -> tuple[str, Any, str]:
    """Ask a question in a new session: its id, its entry in the list and its title."""
    open_app(page, server.url)
    ask(page, SEGMENTS)
    session = session_of(page)
    item = page.locator(f"#session-list li[data-session='{session}']")
    return session, item, item.locator(".session-open").inner_text().strip()


def test_rename_a_session_in_place(builtin_server: LiveServer, page: Any, shot: Any) -> None:
    session, item, old_title = _answered_session(page, builtin_server)
    # The pencil turns the title into a focused text box holding the old title.
    item.get_by_role("button", name=f"Rename “{old_title}”").click()
    box = item.get_by_role("textbox", name=f"New title for “{old_title}”")
    expect(box).to_be_focused()
    expect(box).to_have_value(old_title)
    shot(page, "renaming")
    # Escape cancels: the old title, nothing sent.
    box.press("Escape")
    expect(item.locator(".session-open")).to_have_text(old_title)
    assert _server_session(builtin_server, session).json()["title"] == old_title
    # Enter saves: the list and the server agree on the new title.
    item.locator(".rename").click()
    item.locator(".rename-input").fill("Segments <b>report</b>")
    item.locator(".rename-input").press("Enter")
    expect(item.locator(".session-open")).to_have_text("Segments <b>report</b>")
    assert item.locator(".session-open b").count() == 0  # text, not markup
    assert _server_session(builtin_server, session).json()["title"] == "Segments <b>report</b>"
    expect(item.locator(".rename")).to_be_focused()  # focus is not lost to the page
    # An empty title is refused with a readable message; the title stays.
    item.locator(".rename").click()
    item.locator(".rename-input").fill("   ")
    item.locator(".rename-input").press("Enter")
    expect(page.locator("#banner")).to_contain_text("A session title cannot be empty")
    expect(item.locator(".session-open")).to_have_text("Segments <b>report</b>")
    # Clicking elsewhere saves too.
    item.locator(".rename").click()
    item.locator(".rename-input").fill("Customers by segment")
    page.locator("#question").click()
    expect(item.locator(".session-open")).to_have_text("Customers by segment")
    assert _server_session(builtin_server, session).json()["title"] == "Customers by segment"
    shot(page, "renamed")


def test_a_rename_begun_while_a_turn_streams_survives_its_end(
    slow_server: LiveServer, page: Any
) -> None:
    open_app(page, slow_server.url)
    turn = send(page, SEGMENTS)
    session = page.locator("#session-list li.current")
    expect(session).to_be_attached()  # listed while its first answer streams
    session.locator(".rename").click()
    box = session.locator(".rename-input")
    expect(box).to_be_focused()
    assert turn.get_attribute("data-status") is None  # still running
    box.fill("Segments, renamed mid-turn")
    # The turn ends and the page reloads the session list: the edit must not be lost.
    finished(turn)
    page.wait_for_timeout(500)
    expect(box).to_be_focused()
    expect(box).to_have_value("Segments, renamed mid-turn")
    box.press("Enter")
    expect(session.locator(".session-open")).to_have_text("Segments, renamed mid-turn")
    assert _server_session(slow_server, session_of(page)).json()["title"] == (
        "Segments, renamed mid-turn"
    )


def test_delete_a_session_asks_first(builtin_server: LiveServer, page: Any, shot: Any) -> None:
    session, item, title = _answered_session(page, builtin_server)
    dialog = page.locator("#delete-dialog")
    # Cancel (the focused button) keeps the session.
    item.get_by_role("button", name=f"Delete “{title}”").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(title)
    expect(page.locator("#delete-cancel")).to_be_focused()
    shot(page, "delete-asked")
    page.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(item).to_be_attached()
    assert _server_session(builtin_server, session).status_code == 200
    # Escape keeps it too.
    item.locator(".delete").click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert _server_session(builtin_server, session).status_code == 200
    # Delete removes it from the list and the server; the page starts a new chat.
    item.locator(".delete").click()
    page.locator("#delete-confirm").click()
    expect(item).not_to_be_attached()
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    assert "#session=" not in page.url
    gone = _server_session(builtin_server, session)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "not_found"
    shot(page, "deleted")


def test_copy_puts_the_sql_on_the_clipboard(builtin_server: LiveServer, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=builtin_server.url)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        open_app(page, builtin_server.url)
        turn = ask(page, SEGMENTS)
        copy = turn.get_by_role("button", name="Copy SQL")
        copy.click()
        expect(copy).to_have_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        shown = turn.locator(".sql-card code").inner_text()
        assert copied == shown
        assert copied.startswith("SELECT") and "FROM customers" in copied
        expect(copy).to_have_text("Copy", timeout=5_000)  # the label comes back
        assert not errors
    finally:
        context.close()


def test_thumbs_down_is_stored_for_review(builtin_server: LiveServer, page: Any) -> None:
    question = "List the products"
    open_app(page, builtin_server.url)
    turn = ask(page, question)
    session = session_of(page)
    down, up = turn.locator(".thumb-down"), turn.locator(".thumb-up")
    down.click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    expect(turn.locator(".feedback-note")).to_have_text("Thanks: the rating is stored for review.")
    state = builtin_server.state
    ratings = [r for r in state.feedback.list(rating="down") if r["session_id"] == session]
    assert [(r["turn"], r["example_saved"]) for r in ratings] == [(1, False)]
    # A thumbs-down saves no example.
    resources = state.resources
    docs = resources.index.documents(resources.database("sample"))
    assert not [d for d in docs if d.kind == "example" and d.text == question]


def test_model_picker_choice_is_used_and_remembered(
    two_model_server: LiveServer, page: Any, shot: Any
) -> None:
    open_app(page, two_model_server.url)
    picker = page.get_by_role("combobox", name="Model")
    assert picker.locator("option").all_inner_texts() == [PLAIN, THINKING]
    expect(picker).to_have_value(PLAIN)
    # The default model does not reason: no reasoning panel.
    first = ask(page, SEGMENTS)
    expect(first.locator(".reasoning")).to_be_hidden()
    assert _server_session(two_model_server, session_of(page)).json()["model"] == PLAIN
    # The other model: its reasoning streams into the collapsed panel, which opens on click.
    page.get_by_role("button", name="New chat").click()
    picker.select_option(THINKING)
    turn = ask(page, SEGMENTS)
    assert _server_session(two_model_server, session_of(page)).json()["model"] == THINKING
    panel = turn.locator("details.reasoning")
    expect(panel).to_be_visible()
    assert panel.get_attribute("open") is None
    expect(panel.locator(".reasoning-text")).to_be_hidden()
    panel.get_by_text("Reasoning").click()
    expect(panel.locator(".reasoning-text")).to_be_visible()
    # One paragraph per model call (four in this turn), each the streamed words joined.
    paragraphs = panel.locator(".reasoning-text p").all_inner_texts()
    assert [p.strip() for p in paragraphs] == [REASONING] * 4
    shot(page, "reasoning-open")
    # The choice is remembered across a reload.
    page.reload()
    expect(page.locator("#model-picker option").first).to_be_attached()
    expect(page.get_by_role("combobox", name="Model")).to_have_value(THINKING)
