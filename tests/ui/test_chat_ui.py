"""The chat UI in a real headless Chromium against the real server on a socket: the builtin model
on the sample database (a slow scripted model where a test must catch a turn half-way)."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from playwright.sync_api import expect

from tests.server.instant_model import InstantModel
from tests.server.live_server import LiveServer, live_server
from tests.server.test_http_chat import settings_for

from .ui_helpers import ask, column, finished, open_app, send, session_of

SEGMENTS = "How many customers are there in each segment?"
PRODUCTS = "List the products"


class DripModel(InstantModel):
    """InstantModel taking 0.3 s per reply, whose final answer is long (several lines) and
    streams a word every 40 ms."""

    delay_s: float = 0.3
    token_delay_s: float = 0.04

    def decide(self, messages: list[BaseMessage]) -> AIMessage:
        """The scripted reply; the last one made long enough to wrap over several lines."""
        reply = super().decide(messages)
        if reply.tool_calls:
            return reply
        text = " ".join(["The customers are grouped by their segment in the table above."] * 6)
        return AIMessage(content=text, usage_metadata=reply.usage_metadata)

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in super()._astream(*args, **kwargs):
            yield chunk
            await asyncio.sleep(self.token_delay_s)


@pytest.fixture(scope="module")
def drip_server(
    prepared_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The drip-fed model: a step every 0.3 s, then the answer word by word over ~2 s."""
    import shutil

    data = tmp_path_factory.mktemp("ui-drip") / "data"
    shutil.copytree(prepared_dir, data)
    model = DripModel()
    with live_server(settings_for(data), model_factory=lambda spec: model) as server:
        yield server


def test_answer_shows_sql_table_chart_and_answer(
    builtin_server: LiveServer, page: Any, shot: Any
) -> None:
    open_app(page, builtin_server.url)
    shot(page, "empty")
    turn = ask(page, SEGMENTS)
    expect(turn.locator(".question")).to_have_text(SEGMENTS)
    # The SQL, highlighted (keywords in spans), with its copy button.
    sql = turn.locator(".sql-card code")
    expect(sql).to_contain_text("FROM customers")
    assert turn.locator(".sql-card .kw").count() >= 3
    # The table: its header and the three segments.
    headers = turn.locator("table.result th").all_inner_texts()
    assert [h.strip() for h in headers] == ["segment", "customer_count"]
    assert column(turn, 0) == ["Consumer", "Corporate", "Small Business"]
    # The chart: vega-embed drew an SVG with one bar per segment.
    chart = turn.locator(".chart-card svg")
    expect(chart).to_be_visible()
    assert turn.locator(".chart-card svg .mark-rect path").count() == 3
    expect(turn.locator(".answer")).to_contain_text("Consumer: 822")
    # Every step that ran is ticked off; the transient "Thinking…" lines are gone.
    steps = turn.locator(".steps li")
    assert steps.count() >= 3
    assert turn.locator(".steps li.done").count() == steps.count()
    expect(turn.locator(".turn-actions .export")).to_be_visible()
    shot(page, "answered", full_page=True)


def test_steps_stream_in_before_the_answer_completes(
    slow_server: LiveServer, page: Any, shot: Any
) -> None:
    open_app(page, slow_server.url)
    turn = send(page, "Customers per segment?")
    # Steps appear while the turn is still running (no done event yet: no data-status).
    expect(turn.locator(".steps li").first).to_be_attached()
    assert turn.get_attribute("data-status") is None
    expect(page.locator("#send")).to_be_disabled()
    expect(turn.locator(".steps li.done").first).to_be_attached()
    assert turn.get_attribute("data-status") is None
    assert turn.locator(".answer").inner_text() == ""
    shot(page, "streaming")
    seen_sql_before_done = False
    deadline = time.monotonic() + 30
    while turn.get_attribute("data-status") is None and time.monotonic() < deadline:
        seen_sql_before_done |= turn.locator(".sql-card").count() > 0
        page.wait_for_timeout(50)
    finished(turn)
    assert seen_sql_before_done, "the SQL only appeared with the final answer"
    expect(page.locator("#send")).to_be_enabled()


def test_sort_the_table(builtin_server: LiveServer, page: Any, shot: Any) -> None:
    open_app(page, builtin_server.url)
    turn = ask(page, SEGMENTS)
    count_header = turn.locator("table.result th").nth(1)
    count_header.locator("button").click()
    expect(count_header).to_have_attribute("aria-sort", "ascending")
    assert column(turn, 1) == ["282", "396", "822"]
    assert column(turn, 0) == ["Small Business", "Corporate", "Consumer"]
    count_header.locator("button").click()
    expect(count_header).to_have_attribute("aria-sort", "descending")
    assert column(turn, 1) == ["822", "396", "282"]
    expect(turn.locator("table.result th").nth(0)).to_have_attribute("aria-sort", "none")
    shot(page, "sorted-descending")
    segment_header = turn.locator("table.result th").nth(0)
    segment_header.locator("button").click()
    expect(segment_header).to_have_attribute("aria-sort", "ascending")
    assert column(turn, 0) == ["Consumer", "Corporate", "Small Business"]


def test_page_through_a_long_result(builtin_server: LiveServer, page: Any, shot: Any) -> None:
    open_app(page, builtin_server.url)
    turn = ask(page, PRODUCTS)
    info = turn.locator(".page-info")
    expect(info).to_have_text("Rows 1–20 of 150 · page 1 of 8")
    expect(turn.locator(".prev")).to_be_disabled()
    first_page = column(turn, 0)
    assert len(first_page) == 20
    turn.locator(".next").click()
    expect(info).to_have_text("Rows 21–40 of 150 · page 2 of 8")
    second_page = column(turn, 0)
    assert len(second_page) == 20 and not set(first_page) & set(second_page)
    shot(page, "page-2", full_page=True)
    for _ in range(6):
        turn.locator(".next").click()
    expect(info).to_have_text("Rows 141–150 of 150 · page 8 of 8")
    expect(turn.locator(".next")).to_be_disabled()
    assert len(column(turn, 0)) == 10
    # Sorting goes back to page 1, over all 150 rows (not just the page shown).
    turn.locator("table.result th button").first.click()
    expect(info).to_have_text("Rows 1–20 of 150 · page 1 of 8")
    assert column(turn, 0) == sorted(column(turn, 0), key=str.casefold)


def test_export_csv_downloads_and_parses(builtin_server: LiveServer, page: Any) -> None:
    open_app(page, builtin_server.url)
    turn = ask(page, SEGMENTS)
    with page.expect_download() as info:
        turn.locator(".export").click()
    download = info.value
    assert download.suggested_filename == f"sqlsage-{session_of(page)}-1.csv"
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["segment", "customer_count"]
    assert sorted(rows[1:]) == [
        ["Consumer", "822"],
        ["Corporate", "396"],
        ["Small Business", "282"],
    ]


def test_thumbs_up_saves_the_example(builtin_server: LiveServer, page: Any, shot: Any) -> None:
    question = "What was the total revenue by year?"
    open_app(page, builtin_server.url)
    turn = ask(page, question)
    up = turn.locator(".thumb-up")
    expect(up).to_have_attribute("aria-pressed", "false")
    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(turn.locator(".feedback-note")).to_have_text(
        "Thanks: the question and its SQL are now a verified example."
    )
    shot(page, "thumbs-up")
    resources = builtin_server.state.resources
    docs = resources.index.documents(resources.database("sample"))
    examples = [d for d in docs if d.kind == "example" and d.text == question]
    assert examples, "the thumbs-up example is not in the knowledge index"
    sql = turn.locator(".sql-card code").inner_text()
    assert [d.payload["sql"] for d in examples] == [sql]


def test_follow_up_in_the_same_session(builtin_server: LiveServer, page: Any, shot: Any) -> None:
    open_app(page, builtin_server.url)
    ask(page, SEGMENTS)
    session = session_of(page)
    second = ask(page, "Only the Consumer segment")
    assert session_of(page) == session
    assert page.locator(".turn").count() == 2
    expect(second.locator(".answer")).not_to_be_empty()
    with httpx.Client(base_url=builtin_server.url, timeout=30) as client:
        detail = client.get(f"/api/sessions/{session}").json()
    assert [m["question"] for m in detail["messages"]] == [SEGMENTS, "Only the Consumer segment"]
    shot(page, "follow-up", full_page=True)


def test_new_session_switch_back_and_reload(
    builtin_server: LiveServer, page: Any, shot: Any
) -> None:
    open_app(page, builtin_server.url)
    ask(page, SEGMENTS)
    first = session_of(page)
    page.get_by_role("button", name="New chat").click()
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    assert "#session=" not in page.url
    ask(page, PRODUCTS)
    second = session_of(page)
    assert second != first
    sessions = page.locator("#session-list li")
    expect(sessions.locator(f"xpath=self::*[@data-session='{second}']")).to_have_class("current")
    shot(page, "second-session")
    # Switch back: the first session's turn is drawn again from the server's record.
    page.locator(f"#session-list li[data-session='{first}'] .session-open").click()
    expect(page.locator(".turn")).to_have_count(1)
    turn = page.locator(".turn").first
    expect(turn.locator(".question")).to_have_text(SEGMENTS)
    assert session_of(page) == first
    assert column(turn, 0) == ["Consumer", "Corporate", "Small Business"]
    expect(turn.locator(".chart-card svg")).to_be_visible()
    # Reload: the same session's history, and both sessions in the list.
    page.reload()
    turn = page.locator(".turn").first
    expect(turn.locator(".question")).to_have_text(SEGMENTS)
    expect(turn).to_have_attribute("data-status", "answered")
    expect(turn.locator(".answer")).to_contain_text("Consumer: 822")
    expect(turn.locator(".sql-card code")).to_contain_text("FROM customers")
    expect(turn.locator(".chart-card svg")).to_be_visible()
    expect(page.locator(f"#session-list li[data-session='{first}']")).to_have_class("current")
    expect(page.locator(f"#session-list li[data-session='{second}']")).to_be_attached()
    shot(page, "after-reload")


def test_an_unknown_table_gets_a_readable_error(
    builtin_server: LiveServer, page: Any, shot: Any
) -> None:
    open_app(page, builtin_server.url)
    turn = ask(page, "What is the total revenue of the spaceships table?", status="refused")
    error = turn.locator(".error-box")
    expect(error).to_be_visible()
    expect(error.locator(".message")).to_contain_text("could not place 'spaceships'")
    expect(error.locator(".hint")).to_contain_text("Rephrase the question")
    assert "Traceback" not in page.locator("#messages").inner_text()
    expect(turn.locator(".export")).to_be_hidden()
    shot(page, "unknown-table")


def test_phone_width_has_no_horizontal_scroll(
    builtin_server: LiveServer, browser: Any, watch: Any, shot: Any
) -> None:
    from .conftest import watch_page

    ctx = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    try:
        page = watch_page(ctx.new_page(), watch)
        width = "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        open_app(page, builtin_server.url)
        assert page.evaluate(width) <= 390
        shot(page, "phone-empty")
        turn = ask(page, "What was the total revenue by year?")
        expect(turn.locator(".chart-card svg")).to_be_visible()
        expect(turn.locator("table.result")).to_be_visible()
        page.wait_for_timeout(300)  # vega-embed sizes the chart after it is attached
        assert page.evaluate(width) <= 390
        # Nothing inside sticks out of the viewport either (the table scrolls in its own box).
        overflow = page.evaluate(
            """() => [...document.querySelectorAll('.turn *')]
                 .filter((e) => !e.closest('.table-wrap') && !e.closest('.sql'))
                 .filter((e) => e.getBoundingClientRect().right > innerWidth + 1)
                 .map((e) => e.className.baseVal ?? e.className).slice(0, 5)"""
        )
        assert overflow == []
        shot(page, "phone-answer")
        page.get_by_role("button", name="Show sessions").click()
        expect(page.locator("#sidebar")).to_be_visible()
        page.wait_for_timeout(300)  # the drawer slides in over 0.15 s
        assert page.locator("#sidebar").bounding_box()["x"] == 0
        assert page.evaluate(width) <= 390
        shot(page, "phone-sessions")
        # The drawer closes with its own button and with Escape, focus back on the toggle.
        page.get_by_role("button", name="Hide sessions").click()
        expect(page.locator("#sidebar")).to_be_hidden()
        page.get_by_role("button", name="Show sessions").click()
        expect(page.locator("#sidebar")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.locator("#sidebar")).to_be_hidden()
        expect(page.get_by_role("button", name="Show sessions")).to_be_focused()
    finally:
        ctx.close()


def test_keyboard_enter_sends_shift_enter_newline_focus_visible(
    builtin_server: LiveServer, page: Any, shot: Any
) -> None:
    open_app(page, builtin_server.url)
    box = page.locator("#question")
    # Reach the question box by keyboard alone, checking every stop shows a focus outline.
    stops = []
    for _ in range(400):  # past every session's three buttons in the sidebar
        page.keyboard.press("Tab")
        stop = page.evaluate(
            """() => { const e = document.activeElement; const s = getComputedStyle(e);
                 return [e.id || e.className || e.tagName, s.outlineStyle, s.outlineWidth]; }"""
        )
        stops.append(stop)
        assert stop[1] != "none" and stop[2] != "0px", f"no visible focus on {stop}"
        if stop[0] == "question":
            break
    else:
        pytest.fail(f"Tab never reached the question box: {stops}")
    shot(page, "focus-visible")
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    assert box.input_value() == "first line\nsecond line"
    assert page.locator(".turn").count() == 0
    box.fill("")
    page.keyboard.type(SEGMENTS)
    page.keyboard.press("Enter")
    turn = finished(page.locator(".turn").first)
    expect(turn.locator(".question")).to_have_text(SEGMENTS)
    assert box.input_value() == ""
    # The result's controls are reachable by keyboard too: sort with Enter on a header.
    turn.locator("table.result th button").nth(1).focus()
    page.keyboard.press("Enter")
    expect(turn.locator("table.result th").nth(1)).to_have_attribute("aria-sort", "ascending")


def test_every_control_has_an_accessible_name(builtin_server: LiveServer, page: Any) -> None:
    open_app(page, builtin_server.url)
    ask(page, PRODUCTS)  # sort buttons, pager, export, thumbs, session list entries
    cdp = page.context.new_cdp_session(page)
    nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    roles = {"button", "combobox", "textbox", "checkbox", "link", "menuitem", "tab", "switch"}
    controls = [
        n for n in nodes if not n.get("ignored") and n.get("role", {}).get("value") in roles
    ]
    nameless = [
        (n["role"]["value"], n.get("backendDOMNodeId"))
        for n in controls
        if not str(n.get("name", {}).get("value", "")).strip()
    ]
    assert len(controls) >= 12
    assert nameless == [], f"controls without an accessible name: {nameless}"
    names = {str(n.get("name", {}).get("value", "")) for n in controls}
    for expected in (
        "Question",
        "Send question",
        "Database",
        "Model",
        "New chat",
        "Export the result as CSV",
        "Good answer: save as a verified example",
        "Bad answer: flag for review",
        "Next page",
        "Previous page",
    ):
        assert expected in names, f"no control named {expected!r} in {sorted(names)}"


def test_dark_and_light_themes_follow_the_system(
    builtin_server: LiveServer, page: Any, shot: Any
) -> None:
    open_app(page, builtin_server.url)
    ask(page, SEGMENTS)
    colours = "() => [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]"
    page.emulate_media(color_scheme="light")
    light = page.evaluate(colours)
    shot(page, "light")
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate(colours)
    shot(page, "dark")
    assert light == ["rgb(247, 247, 248)", "rgb(29, 31, 35)"]
    assert dark == ["rgb(21, 23, 27)", "rgb(230, 232, 235)"]


def test_charts_follow_a_dark_system_theme(
    builtin_server: LiveServer, page: Any, shot: Any
) -> None:
    page.emulate_media(color_scheme="dark")
    open_app(page, builtin_server.url)
    turn = ask(page, SEGMENTS)
    expect(turn.locator(".chart-card svg")).to_be_visible()
    fills = turn.locator(".chart-card svg text").evaluate_all(
        "(nodes) => [...new Set(nodes.map((n) => n.getAttribute('fill')))]"
    )
    background = turn.locator(".chart-card svg rect.background").evaluate_all(
        "(nodes) => nodes.map((n) => n.getAttribute('fill') || n.style.fill || 'none')"
    )
    shot(page, "dark-chart")
    assert fills and all(f and f.lower() not in ("#000", "#000000", "black") for f in fills), fills
    assert all(b in ("none", "transparent", "") for b in background), background


SHIFT_OBSERVER = """() => {
  window.__shifts = [];
  window.__firstToken = null;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__shifts.push({
      value: e.value, recent: e.hadRecentInput, t: e.startTime,
      sources: (e.sources || []).map((s) => s.node ? String(s.node.className || s.node.nodeName) : ''),
    });
  }).observe({ type: 'layout-shift', buffered: true });
  // The moment the answer's first token lands in the page.
  new MutationObserver(() => {
    if (window.__firstToken === null && document.querySelector('.turn .answer')?.textContent)
      window.__firstToken = performance.now();
  }).observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
}"""


def streamed_turn_shifts(page: Any, url: str) -> tuple[list[dict[str, Any]], float]:
    """Ask the drip-fed model a question; the layout shifts not caused by input (CLS entries),
    and when the first answer token was shown."""
    open_app(page, url)
    page.evaluate(SHIFT_OBSERVER)
    turn = send(page, "Customers per segment?")
    expect(turn.locator(".answer")).not_to_be_empty()
    assert turn.get_attribute("data-status") is None  # caught while the tokens still stream
    finished(turn)
    page.wait_for_timeout(300)
    shifts: list[dict[str, Any]] = [s for s in page.evaluate("window.__shifts") if not s["recent"]]
    first_token: float = page.evaluate("window.__firstToken")
    return shifts, first_token


# Layout shift = content already on screen moving without the user acting (Web Vitals CLS).
# Tokens are appended at the end of the answer, the last thing shown in the turn, so nothing
# moves while they stream; the 0.01 allowance absorbs a sub-pixel reflow.
MAX_TOKEN_SHIFT = 0.01
# Over a whole turn, Web Vitals' "good" (0.1). Measured ~0.02 at 1280x800: the steps list sits
# above the SQL and table, so the build_chart step line, added after they are shown, pushes them
# down by a line or two; and the pickers widen once their options load (~0.0006).
MAX_TURN_SHIFT = 0.1


def test_no_layout_shift_while_tokens_stream(drip_server: LiveServer, page: Any) -> None:
    shifts, first_token = streamed_turn_shifts(page, drip_server.url)
    during_tokens = [s for s in shifts if s["t"] >= first_token]
    assert sum(s["value"] for s in during_tokens) < MAX_TOKEN_SHIFT, during_tokens
    assert sum(s["value"] for s in shifts) < MAX_TURN_SHIFT, shifts


def test_first_paint_under_one_second(builtin_server: LiveServer, browser: Any) -> None:
    timings = []
    for _ in range(3):
        ctx = browser.new_context()  # a first visit: nothing in the HTTP cache
        try:
            page = ctx.new_page()
            page.goto(builtin_server.url)
            timings.append(
                page.evaluate(
                    """() => new Promise((resolve) => {
                         const found = () => performance.getEntriesByName('first-contentful-paint')[0];
                         if (found()) return resolve(found().startTime);
                         new PerformanceObserver(() => found() && resolve(found().startTime))
                           .observe({ type: 'paint', buffered: true });
                       })"""
                )
            )
            assert page.title() == "sqlsage"
        finally:
            ctx.close()
    # The median of three cold loads: one slow load on a busy 2-core CI box is not the page's
    # fault (benchmarks/ui_weight.py measures ten; docs/benchmarks.md has the figures).
    assert sorted(timings)[1] < 1000, timings
