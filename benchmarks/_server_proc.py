"""The sqlsage HTTP server in a process of its own, for benchmarks/server_load.py (so the load
generator can read the server's RSS from /proc/<pid>/status).

    .venv/bin/python benchmarks/_server_proc.py --data-dir /tmp/d --prepare
    .venv/bin/python benchmarks/_server_proc.py --port 0 --data-dir /tmp/d

--prepare generates the sample database and builds its knowledge index, then exits.
Serving, it runs create_app on 127.0.0.1 only, with an instant scripted model (semantic_search
-> run_sql -> build_chart -> answer, like tests/server/instant_model.py, which benchmarks must
not import) and rate limits too high to bite, on the event loop `sqlsage serve` gets from
uvicorn.run (uvloop when installed). Prints `LISTENING <port>` once uvicorn accepts
connections; stops on SIGTERM/SIGINT (uvicorn lets running turns finish). `--profile FILE`
writes cProfile stats of the whole serving run to FILE at exit (slows the server down).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from _common import ROOT  # noqa: F401  (puts the project root on sys.path)
from _scripted import ScriptedChatModel

QUESTION = "How many customers are there in each segment?"
SQL = "SELECT segment, COUNT(*) AS customers FROM customers GROUP BY segment ORDER BY segment"
# States no figures, so the graph's number check has nothing to flag.
ANSWER = f"Customers per segment are in the table. (SQL: {SQL})"
UNLIMITED = 1_000_000  # the Settings maximum for both rate-limit fields
INDEX_WAIT_S = 120.0


def instant_model() -> ScriptedChatModel:
    """One stateless model instance for every session: reply n of a turn is steps[n]."""
    return ScriptedChatModel(
        steps=[
            ("", [("semantic_search", {"question": QUESTION, "k": 4})]),
            ("", [("run_sql", {"sql": SQL})]),
            ("", [("build_chart", {"chart_type": "bar"})]),
            (ANSWER, []),
        ]
    )


def watch_gc() -> Callable[[], None]:
    """Record every garbage collection's generation and pause; returns the summary printer."""
    import gc

    pauses: list[tuple[int, float]] = []
    started: list[float] = [0.0]

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], (time.perf_counter() - started[0]) * 1000))

    def summary() -> None:
        for generation in (0, 1, 2):
            times = sorted(ms for g, ms in pauses if g == generation)
            if times:
                print(
                    f"GC gen{generation}: {len(times)} collections, {sum(times):.0f} ms in all, "
                    f"max {times[-1]:.1f} ms, {sum(t > 10 for t in times)} over 10 ms",
                    file=sys.stderr,
                    flush=True,
                )

    gc.callbacks.append(record)
    return summary


def main() -> None:
    """Parse flags, bind 127.0.0.1:PORT, serve until signalled."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--prepare", action="store_true", help="build the index, then exit")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here at exit")
    parser.add_argument(
        "--gc-stats", action="store_true", help="print the collector's pauses to stderr at exit"
    )
    args = parser.parse_args()
    gc_summary = watch_gc() if args.gc_stats else None

    import uvicorn

    from server.http import create_app
    from server.logs import configure_logging
    from server.resources import build_resources
    from server.settings import Settings

    configure_logging("WARNING")
    settings = Settings(
        data_dir=args.data_dir,
        rate_limit_per_minute=UNLIMITED,
        rate_limit_burst=UNLIMITED,
    )
    if args.prepare:
        resources = build_resources(settings)
        try:
            resources.index.ensure(resources.database())
        finally:
            resources.index.close()
            resources.close()
        return
    model = instant_model()
    app = create_app(settings, model_factory=lambda spec: model)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        lifespan="on",
        backlog=2048,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        # Resources.index is built lazily without a lock: a request that reaches it while the
        # start-up warm-up is still building it opens a second Chroma client on the same path
        # (seen: the index moved aside as corrupt and rebuilt). Announce the port only once
        # the warm-up has built it.
        deadline = time.monotonic() + INDEX_WAIT_S
        while server.started and not task.done() and time.monotonic() < deadline:
            if getattr(app.state, "sqlsage", None) and app.state.sqlsage.resources._index:
                break
            await asyncio.sleep(0.01)
        if server.started and not task.done():
            print(f"LISTENING {sock.getsockname()[1]}", flush=True)
        await task

    # uvicorn.run's loop (what `sqlsage serve` runs on), not asyncio.run's default one.
    loop_factory = config.get_loop_factory()
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    if profiler is not None or gc_summary is not None:
        # uvicorn re-raises the SIGTERM it caught once it has shut down: with the default
        # handler that kills the process before the stats below are written.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve())
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        if gc_summary is not None:
            gc_summary()
    sys.exit(0 if server.started else 1)


if __name__ == "__main__":
    main()
