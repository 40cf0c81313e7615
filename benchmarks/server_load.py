"""Server load: concurrent SSE chats against a real sqlsage server on loopback.

The server runs in a process of its own (benchmarks/_server_proc.py: create_app under uvicorn on
127.0.0.1, the bundled sample database, an instant scripted model: semantic_search -> run_sql ->
build_chart -> answer, rate limits out of the way), so its resident memory is read from
/proc/<pid>/status. This process is the client: httpx.AsyncClient with a connection pool as large
as the concurrency; every chat is POST /api/chat {"message": ...} in a new session, streamed and
parsed frame by frame.

    first event  request sent -> first complete SSE frame received
    done         request sent -> the `done` frame received
    errors       a non-200 answer, a stream without `done`, an `error` event, a transport error
    turns/s      turns completed / wall time of the measured waves

Warm-up (not measured): the knowledge index is built and /api/ready answers 200, then a few
sequential chats and two waves at full concurrency. Then `--turns` chats run in waves of
`--concurrency` (every chat of a wave starts at once; the next wave starts when it has ended).
Server RSS is read after the warm-up and after the last wave (2 s later, once the turns' records
are written). Targets: zero errors, p99 time to first event < 200 ms (first wave: 200 chats at
once), RSS growth <= 10 %.

Client and server share the machine's cores, so the figures include the client's own CPU.

    .venv/bin/python benchmarks/server_load.py [--turns 5000] [--concurrency 200] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, emit_result, percentile, print_table
from _load_clients import QUESTION, Chat, HttpxClient, RawClient

SERVER = Path(__file__).with_name("_server_proc.py")
TURNS = 5_000
CONCURRENCY = 200
CLOSED_TURNS = 2_000
WARMUP_SEQUENTIAL = 10
WARMUP_WAVES = 2
MAX_SECONDS = 900.0  # no new wave starts after this (a slow machine ends early, flagged)
START_TIMEOUT_S = 180.0  # process start + sample database + knowledge index
SETTLE_S = 2.0
TARGET_FIRST_EVENT_P99_MS = 200.0
TARGET_RSS_GROWTH_PCT = 10.0


@dataclass
class Wave:
    """One wave of concurrent chats."""

    chats: list[Chat]
    wall_s: float
    rss_kb: int | None = None


@dataclass
class Run:
    """All measured waves."""

    waves: list[Wave] = field(default_factory=list)

    @property
    def chats(self) -> list[Chat]:
        """Every chat of every wave."""
        return [c for w in self.waves for c in w.chats]


Client = HttpxClient | RawClient


# ---- the server process --------------------------------------------------------------------
class ServerProcess:
    """benchmarks/_server_proc.py as a child process; stopped by its pid on exit."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def prepare(self) -> None:
        """Generate the sample database and build its knowledge index (not timed)."""
        with self.log_path.open("w") as log:
            done = subprocess.run(
                [sys.executable, str(SERVER), "--prepare", "--data-dir", str(self.data_dir)],
                cwd=ROOT,
                stderr=log,
                timeout=START_TIMEOUT_S,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"preparing the data directory failed:\n{self.log_tail()}")

    def start(self) -> str:
        """Start it and return its base URL once it listens."""
        log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--port", "0", "--data-dir", str(self.data_dir)]
            + (["--gc-stats"] if os.environ.get("SQLSAGE_BENCH_GC_STATS") else []),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,  # Ctrl-C reaches only us; we stop it ourselves
        )
        log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until LISTENING or the process exits
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"the server did not start; its log:\n{self.log_tail()}")
        self.port = int(line.split()[1])
        return f"http://127.0.0.1:{self.port}"

    def rss_kb(self) -> int | None:
        """VmRSS of the server process, from /proc."""
        if self.proc is None:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def stop(self) -> None:
        """SIGTERM (uvicorn finishes running turns), then SIGKILL after 30 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's stderr."""
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"


async def wait_ready(client: Client, deadline: float) -> None:
    """Poll GET /api/ready until it answers 200."""
    last: object = None
    while time.monotonic() < deadline:
        try:
            if (last := await client.ready()) == 200:
                return
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        await asyncio.sleep(0.2)
    raise RuntimeError(f"/api/ready did not answer 200 in time; last answer: {last}")


async def wave(client: Client, size: int) -> Wave:
    """`size` chats started at once; returns when all have ended."""
    conns = await client.connect(size)
    started = time.perf_counter()
    chats = await asyncio.gather(*(client.chat(c, QUESTION) for c in conns))
    wall = time.perf_counter() - started
    await client.release(conns)
    return Wave(list(chats), wall)


async def closed_loop(client: Client, workers: int, turns: int) -> Wave:
    """`workers` clients, each starting its next chat as soon as its previous one ended (like
    `wrk -c 200`), until `turns` chats have been started."""
    conns = await client.connect(workers)
    left = turns
    started = time.perf_counter()

    async def worker(conn: Any) -> list[Chat]:
        nonlocal left
        mine = []
        while left > 0:
            left -= 1
            mine.append(await client.chat(conn, QUESTION))
        return mine

    done = await asyncio.gather(*(worker(c) for c in conns))
    wall = time.perf_counter() - started
    await client.release(conns)
    return Wave([c for chats in done for c in chats], wall)


async def health_wave(client: Client, size: int) -> list[float]:
    """`size` GET /api/health at once: the floor any request pays on this server and client
    (HTTP, routing, middleware, the client's own work), for reading the chat figures against."""
    conns = await client.connect(size)
    try:
        return list(await asyncio.gather(*(client.health(c) for c in conns)))
    finally:
        await client.release(conns)


async def drive(args: argparse.Namespace, server: ServerProcess, url: str) -> dict:
    """Warm up, record RSS, run the measured waves and the closed loop, record RSS again."""
    client: Client = (RawClient if args.client == "raw" else HttpxClient)(url, args.concurrency)
    try:
        await wait_ready(client, time.monotonic() + START_TIMEOUT_S)
        warm_errors = 0
        for _ in range(args.warmup_sequential):
            (conn,) = await client.connect(1)
            warm_errors += (await client.chat(conn, QUESTION)).error is not None
            await client.release([conn])
        for _ in range(args.warmup_waves):
            warm = await wave(client, args.concurrency)
            warm_errors += sum(c.error is not None for c in warm.chats)
        await asyncio.sleep(SETTLE_S)
        floor = await health_wave(client, args.concurrency)
        print(
            f"reference: {args.concurrency} x GET /api/health at once: p50 {_ms(floor, 50):,} ms, "
            f"p99 {_ms(floor, 99):,} ms",
            flush=True,
        )
        await asyncio.sleep(SETTLE_S)
        rss_warm = server.rss_kb()
        print(
            f"warm-up: {args.warmup_sequential} sequential + {args.warmup_waves} x "
            f"{args.concurrency} concurrent chats ({warm_errors} errors); "
            f"server RSS {_mb(rss_warm)} MB",
            flush=True,
        )

        run = Run()
        began = time.perf_counter()
        deadline = time.monotonic() + args.max_seconds
        done_turns = 0
        peak_kb = rss_warm or 0
        while done_turns < args.turns and time.monotonic() < deadline:
            size = min(args.concurrency, args.turns - done_turns)
            w = await wave(client, size)
            w.rss_kb = server.rss_kb()
            peak_kb = max(peak_kb, w.rss_kb or 0)
            run.waves.append(w)
            done_turns += size
            if len(run.waves) % 5 == 0 or done_turns >= args.turns:
                errors = sum(c.error is not None for c in run.chats)
                print(
                    f"  {done_turns:>6,} turns  {time.perf_counter() - began:6.1f} s  "
                    f"errors {errors}  RSS {_mb(w.rss_kb)} MB",
                    flush=True,
                )
        wall = time.perf_counter() - began
        await asyncio.sleep(SETTLE_S)
        rss_after = server.rss_kb()
        closed = None
        if args.closed_turns > 0 and done_turns >= args.turns:
            closed = await closed_loop(client, args.concurrency, args.closed_turns)
            print(f"  closed loop: {len(closed.chats):,} turns  {closed.wall_s:6.1f} s", flush=True)
            await asyncio.sleep(SETTLE_S)
    finally:
        await client.close()
    return {
        "run": run,
        "closed": closed,
        "wall_s": wall,
        "rss_warm_kb": rss_warm,
        "rss_after_kb": rss_after,
        "rss_closed_kb": server.rss_kb() if closed is not None else None,
        "rss_peak_kb": max(peak_kb, rss_after or 0),
        "timed_out": done_turns < args.turns,
        "warm_errors": warm_errors,
        "health_p50_ms": _ms(floor, 50),
        "health_p99_ms": _ms(floor, 99),
    }


# ---- report --------------------------------------------------------------------------------
def _mb(kb: int | None) -> str:
    return "?" if kb is None else f"{kb / 1024:,.1f}"


def _ms(values: list[float], pct: float) -> float:
    return round(percentile(values, pct) * 1000, 1)


def latency_row(label: str, chats: list[Chat], wall_s: float) -> list:
    """label, chats, errors, first-event p50/p99, done p50/p99, turns/s."""
    first = [c.first_s for c in chats if c.first_s is not None]
    done = [c.done_s for c in chats if c.done_s is not None]
    errors = sum(c.error is not None for c in chats)
    return [
        label,
        len(chats),
        errors,
        _ms(first, 50),
        _ms(first, 99),
        _ms(done, 50),
        _ms(done, 99),
        round(len(chats) / wall_s, 1) if wall_s else None,
    ]


def report(args: argparse.Namespace, result: dict) -> bool:
    """Print the tables and verdicts; True when every target is met."""
    run: Run = result["run"]
    chats = run.chats
    first_wave = run.waves[0] if run.waves else Wave([], 0.0)
    headers = ["waves", "chats", "errors", "1st ev p50 ms", "1st ev p99 ms",
               "done p50 ms", "done p99 ms", "turns/s"]  # fmt: skip
    rows = [
        latency_row(
            f"first wave ({args.concurrency} at once)", first_wave.chats, first_wave.wall_s
        ),
        latency_row(f"all {len(run.waves)} waves", chats, result["wall_s"]),
    ]
    closed: Wave | None = result["closed"]
    if closed is not None:
        rows.append(
            latency_row(f"closed loop ({args.concurrency} clients)", closed.chats, closed.wall_s)
        )
    print()
    print_table(headers, rows)
    per_wave = [latency_row("", w.chats, w.wall_s)[4] for w in run.waves]
    if per_wave:
        print(
            f"first-event p99 of each wave: min {min(per_wave):,} / median "
            f"{percentile(per_wave, 50):,.1f} / max {max(per_wave):,} ms"
        )

    warm, after = result["rss_warm_kb"], result["rss_after_kb"]
    growth = (after - warm) / warm * 100 if warm and after else None
    print()
    print_table(
        ["server RSS", "MB"],
        [
            ["after warm-up", _mb(warm)],
            [f"after {len(chats):,} turns", _mb(after)],
            ["peak seen (after a wave)", _mb(result["rss_peak_kb"])],
            ["growth %", None if growth is None else round(growth, 1)],
            *(
                [[f"after {len(closed.chats):,} more (closed loop)", _mb(result["rss_closed_kb"])]]
                if closed is not None
                else []
            ),
        ],
    )

    every = chats + (closed.chats if closed is not None else [])
    kinds: dict[str, int] = {}
    for c in every:
        if c.error is not None:
            kinds[c.error.split(":")[0]] = kinds.get(c.error.split(":")[0], 0) + 1
    if kinds:
        print("\nerrors by kind: " + ", ".join(f"{k} x{n}" for k, n in kinds.items()))
        print("first error: " + next(c.error for c in every if c.error))

    errors = sum(c.error is not None for c in every)
    p99_first = rows[0][4]
    verdicts = {
        "zero errors": errors == 0 and not result["timed_out"],
        f"p99 first event < {TARGET_FIRST_EVENT_P99_MS:g} ms (first wave)": (
            p99_first == p99_first and p99_first < TARGET_FIRST_EVENT_P99_MS
        ),
        f"p99 first event < {TARGET_FIRST_EVENT_P99_MS:g} ms (every wave: sustained)": (
            bool(per_wave)
            and all(v is not None and v < TARGET_FIRST_EVENT_P99_MS for v in per_wave)
        ),
        f"RSS growth <= {TARGET_RSS_GROWTH_PCT:g} %": (
            growth is not None and growth <= TARGET_RSS_GROWTH_PCT
        ),
    }
    print()
    if result["timed_out"]:
        print(f"NOTE: stopped after {len(chats):,} of {args.turns:,} turns (--max-seconds).")
    for name, ok in verdicts.items():
        print(f"target {name}: {'met' if ok else 'MISSED'}")
    emit_result(
        {
            "turns": len(chats),
            "concurrency": args.concurrency,
            "client": args.client,
            "errors": errors,
            "error_kinds": kinds,
            "first_wave": dict(zip(headers[1:], rows[0][1:], strict=True)),
            "all_waves": dict(zip(headers[1:], rows[1][1:], strict=True)),
            "closed_loop": dict(zip(headers[1:], rows[2][1:], strict=True)) if closed else None,
            "rss_closed_mb": round(result["rss_closed_kb"] / 1024, 1) if closed else None,
            "rss_warm_mb": round(warm / 1024, 1) if warm else None,
            "rss_after_mb": round(after / 1024, 1) if after else None,
            "rss_peak_mb": round(result["rss_peak_kb"] / 1024, 1),
            "rss_growth_pct": None if growth is None else round(growth, 2),
            "first_event_p99_by_wave_ms": per_wave,
            "rss_by_wave_mb": [round((w.rss_kb or 0) / 1024, 1) for w in run.waves],
            "timed_out": result["timed_out"],
            "health_reference_ms": {"p50": result["health_p50_ms"], "p99": result["health_p99_ms"]},
            "verdicts": verdicts,
        }
    )
    return all(verdicts.values())


def main() -> None:
    """Parse flags, run the server and the load, stop the server, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=TURNS)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--max-seconds", type=float, default=MAX_SECONDS)
    parser.add_argument(
        "--closed-turns",
        type=int,
        default=CLOSED_TURNS,
        help="then this many chats from --concurrency clients in a closed loop (0: none)",
    )
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw: HTTP/1.1 on asyncio sockets opened before the clock; httpx: AsyncClient",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 400 turns, 50 at once")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and log")
    args = parser.parse_args()
    if args.quick:
        args.turns, args.concurrency = min(args.turns, 400), min(args.concurrency, 50)
        args.closed_turns = min(args.closed_turns, 200)
    args.warmup_sequential = 3 if args.quick else WARMUP_SEQUENTIAL
    args.warmup_waves = 1 if args.quick else WARMUP_WAVES
    if args.turns < 1 or args.concurrency < 1:
        parser.error("--turns and --concurrency must be at least 1")

    folder = Path(tempfile.mkdtemp(prefix="sqlsage-load-"))
    server = ServerProcess(folder / "data", folder / "server.log")
    print(
        f"server load: {args.turns:,} turns in waves of {args.concurrency} + "
        f"{args.closed_turns:,} closed-loop, {args.client} client, data in {folder}"
    )
    completed = False  # a missed target is a figure, not a failure: exit 0 then
    try:
        server.prepare()
        url = server.start()
        print(f"server pid {server.proc.pid if server.proc else '?'} on {url}", flush=True)
        result = asyncio.run(drive(args, server, url))
        report(args, result)
        completed = True
    except KeyboardInterrupt:
        print("interrupted")
    finally:
        server.stop()
        # uvicorn re-raises the SIGTERM it handled: -15 is a clean stop.
        if server.proc is not None and server.proc.returncode not in (0, -15, None):
            print(f"server exit code {server.proc.returncode}; its log ends:\n{server.log_tail()}")
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    sys.exit(0 if completed else 1)


if __name__ == "__main__":
    main()
