"""Chat UI weight and first paint: every resource the page at / loads (HTML, CSS, JS, the vendored
Vega files, the API calls it makes on start), raw and gzip-compressed, and first contentful
paint / DOMContentLoaded on loopback (median of 10 cold loads) in headless Chromium.

    .venv/bin/python benchmarks/ui_weight.py [--loads 10]

Serves the app (builtin model, the bundled sample in a temporary data directory) under uvicorn
on 127.0.0.1 in a thread, and drives Debian's Chromium (/usr/bin/chromium) with Playwright.
Each load is a fresh browser context, so nothing comes from the HTTP cache. The server sends
no Content-Encoding, so "raw" is what goes over the wire; "gzip" (level 6) is what a
compressing reverse proxy would send.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from _common import ROOT  # noqa: F401  (puts the project root on sys.path)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMINGS = """() => new Promise((resolve) => {
  const done = () => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    const nav = performance.getEntriesByType('navigation')[0];
    if (fcp && nav && nav.domContentLoadedEventEnd > 0)
      resolve([fcp.startTime, nav.domContentLoadedEventEnd, nav.loadEventEnd]);
    else setTimeout(done, 20);
  };
  done();
})"""


def serve(data_dir: Path) -> tuple[str, Any, threading.Thread]:
    """The app under uvicorn on a free loopback port, in a thread."""
    import uvicorn

    from server.http import create_app
    from server.logs import configure_logging
    from server.settings import Settings

    configure_logging("WARNING")
    settings = Settings(
        data_dir=data_dir,
        knowledge_dir=data_dir / "knowledge",
        rate_limit_per_minute=1_000_000,
        rate_limit_burst=1_000_000,
    )
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


def weigh(browser: Any, url: str) -> list[tuple[str, str, int, int]]:
    """(kind, path, raw bytes, gzip bytes) of every response one cold load of / receives."""
    context = browser.new_context()
    page = context.new_page()
    seen: list[Any] = []
    page.on("response", lambda response: seen.append(response))
    page.goto(url)
    page.wait_for_load_state("networkidle")
    out = []
    for response in seen:
        body = response.body()
        path = urlparse(response.url).path
        kind = "api" if path.startswith("/api/") else "static"
        out.append((kind, path, len(body), len(gzip.compress(body, compresslevel=6))))
    context.close()
    return out


def timings(browser: Any, url: str, loads: int) -> list[tuple[float, float, float]]:
    """(first contentful paint, DOMContentLoaded, load) in ms, one cold load each."""
    out = []
    for _ in range(loads):
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        out.append(tuple(page.evaluate(TIMINGS)))
        context.close()
    return out


def kib(n: float) -> str:
    return f"{n / 1024:,.1f} KiB"


def main() -> None:
    """Serve, weigh, time, print."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--loads", type=int, default=10)
    args = parser.parse_args()
    if not CHROMIUM.is_file():
        print(f"skipped: no Chromium at {CHROMIUM} (apt-get install chromium)")
        return
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="sqlsage-ui-weight-") as tmp:
        url, server, thread = serve(Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    browser.new_context().close()
                    weigh(browser, url)  # warm the server (first requests, imports)
                    resources = weigh(browser, url)
                    times = timings(browser, url, args.loads)
                    version = browser.version
                finally:
                    browser.close()
        finally:
            server.should_exit = True
            thread.join(30)

    print(f"Chat UI at / on loopback, headless Chromium {version}, Python {sys.version.split()[0]}")
    print()
    print(f"{'resource':<34} {'raw':>12} {'gzip':>12}")
    for kind in ("static", "api"):
        rows = [r for r in resources if r[0] == kind]
        for _, path, raw, packed in rows:
            print(f"{path:<34} {kib(raw):>12} {kib(packed):>12}")
        raw_sum = sum(r[2] for r in rows)
        gz_sum = sum(r[3] for r in rows)
        label = "total page (HTML, CSS, JS)" if kind == "static" else "API calls on start"
        print(f"{label:<34} {kib(raw_sum):>12} {kib(gz_sum):>12}   ({len(rows)} requests)")
        print()
    raw_all = sum(r[2] for r in resources)
    gz_all = sum(r[3] for r in resources)
    print(f"{'everything':<34} {kib(raw_all):>12} {kib(gz_all):>12}   ({len(resources)} requests)")
    print()
    fcp = [t[0] for t in times]
    dcl = [t[1] for t in times]
    load = [t[2] for t in times]
    print(f"{args.loads} cold loads (fresh context each):")
    for name, values in (
        ("first contentful paint", fcp),
        ("DOMContentLoaded", dcl),
        ("load", load),
    ):
        print(
            f"  {name:<24} median {statistics.median(values):6.0f} ms"
            f"   min {min(values):6.0f} ms   max {max(values):6.0f} ms"
        )


if __name__ == "__main__":
    main()
