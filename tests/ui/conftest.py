"""Browser fixtures for the chat UI tests: one headless Chromium (Debian's, driven by Playwright)
for the run, a fresh context and page per test that fails the test on any alert() or uncaught
page error, servers on loopback sockets, and screenshots in test-artifacts/ui/.

Without /usr/bin/chromium (a laptop) the tests skip with the reason; SQLSAGE_REQUIRE_SERVICES=1
(CI, where .ci/run installs it) turns that skip into a failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.server.live_server import LiveServer, live_server
from tests.server.test_http_chat import settings_for
from tests.service_dbs import REQUIRE_ENV, require_or_skip

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
TIMEOUT_MS = 30_000
_shots: list[Path] = []


def chromium_available() -> bool:
    """True when Debian's Chromium is installed and executable."""
    return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole run."""
    available = chromium_available()
    if not available and os.environ.get(REQUIRE_ENV) != "1":
        pytest.skip(
            f"no Chromium at {CHROMIUM}: the browser tests drive Debian's chromium "
            "(apt-get install chromium; .ci/run installs it)"
        )
    require_or_skip(available, "Chromium", str(CHROMIUM))  # fails under REQUIRE_ENV=1
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/ui/, emptied of the previous run's screenshots."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@dataclass
class Watch:
    """What a page did that a test must not allow: alert()/confirm() dialogs, uncaught errors."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def watch_page(page: Any, watch: Watch) -> Any:
    """Record (and dismiss) dialogs and uncaught errors of a page; set the default timeout."""
    page.set_default_timeout(TIMEOUT_MS)

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: watch.errors.append(str(error)))
    return page


@pytest.fixture
def watch() -> Watch:
    """Dialogs and page errors of every page the test opens with new_page()."""
    return Watch()


@pytest.fixture
def context(browser: Any, watch: Watch) -> Iterator[Any]:
    """A fresh browser context (its own storage): desktop size, downloads accepted."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    yield ctx
    ctx.close()
    # Checked after the test's own assertions: a script that ran, or a crash, fails it.
    assert not watch.dialogs, f"the page opened dialogs (script ran?): {watch.dialogs}"
    assert not watch.errors, f"uncaught errors in the page: {watch.errors}"


@pytest.fixture
def new_page(context: Any, watch: Watch) -> Any:
    """Open another watched page (tab) in the test's context."""
    return lambda: watch_page(context.new_page(), watch)


@pytest.fixture
def page(new_page: Any) -> Any:
    """The test's first page."""
    return new_page()


@pytest.fixture
def shot(artifacts: Path, request: pytest.FixtureRequest) -> Any:
    """shot(page, state): a screenshot named <test>-<state>.png in test-artifacts/ui/."""

    def take(page: Any, state: str, *, full_page: bool = False) -> Path:
        path = artifacts / f"{request.node.name}-{state}.png"
        page.screenshot(path=str(path), full_page=full_page)
        _shots.append(path)
        return path

    return take


@pytest.fixture
def server_dir(prepared_dir: Path, tmp_path: Path) -> Path:
    """The sample database and its index, in a data directory of this test's own."""
    target = tmp_path / "data"
    shutil.copytree(prepared_dir, target)
    return target


@pytest.fixture(scope="module")
def builtin_server(
    prepared_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The server with the builtin model on the sample database, shared by a module's tests
    (each test starts its own session; none of them needs an empty server)."""
    data = tmp_path_factory.mktemp("ui-builtin") / "data"
    shutil.copytree(prepared_dir, data)
    with live_server(settings_for(data)) as server:
        yield server


@pytest.fixture(scope="module")
def slow_server(
    prepared_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A scripted model that takes 0.4 s per reply: a turn lasts about 2 s, long enough to
    watch it stream (or to act on the page while it does)."""
    from tests.server.instant_model import InstantModel

    data = tmp_path_factory.mktemp("ui-slow") / "data"
    shutil.copytree(prepared_dir, data)
    model = InstantModel(delay_s=0.4)
    with live_server(settings_for(data), model_factory=lambda spec: model) as server:
        yield server


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say where the screenshots are, once per run."""
    if _shots:
        terminalreporter.write_sep("-", "chat UI screenshots")
        terminalreporter.write_line(f"{len(_shots)} screenshots in {ARTIFACTS}")
