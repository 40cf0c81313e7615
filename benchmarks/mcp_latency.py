"""MCP latency: warm round trips of our `run_sql` over stdio next to DBHub, mcp-alchemy and
mcp-server-sqlite on the same Chinook SQLite file, plus cold start and peak memory.

Every server is a subprocess spoken to over stdio by the mcp SDK's Client in mode="legacy"
(initialize handshake; the peers are handshake-era servers). Each answers with its own SQL
tool: sqlsage run_sql(sql), DBHub execute_sql(sql) (read-only via its TOML [[tools]]),
mcp-alchemy execute_query(query), mcp-server-sqlite read_query(query). Peers are pinned and
installed on first use under benchmarks/.peers/ (benchmarks/_mcp_peers.py).

    Q1  SELECT COUNT(*) FROM Track                       (answer: 3503)
    Q2  top 10 artists by invoice revenue, 5-table join  (answer: Iron Maiden first)
    Q3  SELECT * FROM Track                              (3,503 rows; we cap at 1000, truncated)
    ping  the SDK's own ping round trip (send_ping), the floor under any tool call

Warm: all servers open at once; each round calls every (query, server) pair once, the server
order rotating per round, so machine noise hits all alike. WARMUP rounds, then CALLS timed
rounds. round trip = call_tool() called -> CallToolResult parsed and validated by the client,
p50/p95/p99 in ms; "validate" = the part of it the SDK client spends checking
structuredContent against the tool's outputSchema (only servers that declare one). Bytes: "text" = the text content handed to the model; "result" = the
CallToolResult as JSON (model_dump_json, unset fields left out: close to the wire size; it
includes structuredContent). Correct: every timed answer holds the right figures (Q1 3503; Q2
the 10 artists in order) or, for Q3, all 3,503 rows or an explicit truncation flag. Peak RSS =
VmHWM of the server process (for DBHub the node process, not npm's launcher: that is
"with launcher", the sum over the server's process tree) after the warm run, so its whole life.

Cold start: process spawn -> initialize + tools/list completed, fresh process each, one
unmeasured start then COLD_RUNS, servers rotating; "first result" goes on to Q1's answer asked
right after tools/list. DBHub also as `node .../dbhub` without npx, since npx's registry check
is part of its start as users configure it. Ours answers initialize and tools/list from its
start snapshot (recorded at the unmeasured start, as at any earlier start of the same install)
while the SDK loads; "sqlsage, first start" starts with an empty cache each time (the first
start after an install or upgrade).

No result cache is in our path; --vary-literals adds `WHERE k = k` with k changing every call
(SQLite folds it; same for every server) in case one appears.

    .venv/bin/python benchmarks/mcp_latency.py [--calls 200] [--warmup 20] [--cold-runs 10]
                                    [--skip-peers] [--vary-literals] [--stdio loop|sdk]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sqlite3
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from _common import ROOT, SHARED_DATA, emit_result, percentile, print_table
from _mcp_peers import (
    PeerUnavailable,
    ServerSpec,
    dbhub,
    direct,
    mcp_alchemy,
    mcp_server_sqlite,
    ours,
)
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import CallToolResult

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

DB_PATH = SHARED_DATA / "chinook" / "Chinook_Sqlite.sqlite"
CALLS = 200
WARMUP = 20
COLD_RUNS = 10
Q2 = (
    "SELECT ar.Name AS artist, SUM(il.UnitPrice * il.Quantity) AS revenue FROM Artist ar "
    "JOIN Album al ON al.ArtistId = ar.ArtistId JOIN Track t ON t.AlbumId = al.AlbumId "
    "JOIN InvoiceLine il ON il.TrackId = t.TrackId JOIN Invoice i ON i.InvoiceId = il.InvoiceId "
    "{where}GROUP BY ar.ArtistId, ar.Name ORDER BY revenue DESC LIMIT 10"
)
QUERIES = {
    "Q1": "SELECT COUNT(*) FROM Track{where}",
    "Q2": Q2,
    "Q3": "SELECT * FROM Track{where}",
}
PING_EXTRA_MS = 0.6
Q3_TEXT_LIMIT = 64 * 1024
COLD_LIMIT_MS = 700.0
RSS_LIMIT_MB = 150.0
ISSUE_REFERENCE = (
    "issue 7, p50 ms Q1/Q2/Q3: DBHub 0.5/1.9/27 (Q3 ~968 KB), mcp-alchemy 1.5/3.1/1.5 "
    "(Q3 cut to 22 rows), mcp-server-sqlite 1.8/3.4/24; cold DBHub ~0.55 s, mcp-alchemy ~0.68 s; "
    "SDK ping 0.4-1.0 ms"
)


def sql_for(query: str, call: int, vary: bool) -> str:
    """The query's SQL; with vary, a no-op predicate whose literal changes every call."""
    if not vary:
        return QUERIES[query].format(where="")
    where = f" WHERE {call} = {call}" if query != "Q2" else f"WHERE {call} = {call} "
    return QUERIES[query].format(where=where)


# ---- ground truth and answer checks --------------------------------------------------------
@dataclass(frozen=True)
class Truth:
    """What the right answers contain, from the file itself."""

    track_count: int
    top_artists: list[str]


def ground_truth(db_path: Path) -> Truth:
    """Q1's count and Q2's artists in order, read with sqlite3 (read-only)."""
    uri = f"file:{db_path}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        count = conn.execute(sql_for("Q1", 0, False)).fetchone()[0]
        artists = [row[0] for row in conn.execute(sql_for("Q2", 0, False))]
    return Truth(count, artists)


def text_of(result: CallToolResult) -> str:
    """The text content blocks, joined: what the model reads."""
    return "".join(getattr(block, "text", "") for block in result.content)


def rows_in_answer(spec: ServerSpec, result: CallToolResult, text: str) -> tuple[int, bool]:
    """Q3: rows delivered (structured rows if any, else counted in the text), truncation flag."""
    structured = result.structured_content or {}
    if "row_count" in structured:
        return int(structured["row_count"]), bool(structured.get("truncated"))
    flagged = spec.truncation_marker is not None and spec.truncation_marker in text
    return len(re.findall(spec.row_pattern, text)), flagged


def is_correct(query: str, spec: ServerSpec, result: CallToolResult, truth: Truth) -> bool:
    """Whether this answer holds the right figures (Q3: complete, or says it is cut)."""
    if result.is_error:
        return False
    text = text_of(result)
    if query == "Q1":
        return re.search(rf"\b{truth.track_count}\b", text) is not None
    if query == "Q2":
        at = [text.find(name) for name in truth.top_artists]
        return all(p >= 0 for p in at) and at == sorted(at)
    rows, truncated = rows_in_answer(spec, result, text)
    return rows == truth.track_count or truncated


# ---- process memory ------------------------------------------------------------------------
def descendants(pid: int) -> list[int]:
    """Every descendant process of pid, parents before children."""
    found: list[int] = []
    queue = [pid]
    while queue:
        parent = queue.pop(0)
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                kids = [int(p) for p in (task / "children").read_text().split()]
                found.extend(kids)
                queue.extend(kids)
    return found


def cmdline(pid: int) -> list[str]:
    """The argv of a process ([] once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set size of a process (VmHWM) in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# ---- warm round trips ----------------------------------------------------------------------
@dataclass
class Open:
    """A connected server and what the warm run gathers about it."""

    spec: ServerSpec
    client: Client
    server_pid: int | None = None
    tree: list[int] = field(default_factory=list)
    version: str = ""
    seconds: dict[str, list[float]] = field(default_factory=dict)
    wrong: dict[str, int] = field(default_factory=dict)
    last: dict[str, CallToolResult] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    validating: dict[str, list[float]] = field(default_factory=dict)
    validate_s: float = 0.0


async def connect(stack: contextlib.AsyncExitStack, spec: ServerSpec, errlog: TextIO) -> Open:
    """Start the server, check its SQL tool, find its process."""
    before = set(descendants_of_self())
    transport = stdio_client(spec.params, errlog=errlog)
    client = await stack.enter_async_context(Client(transport, mode="legacy"))
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    tool = tools.get(spec.tool)
    if tool is None:
        raise PeerUnavailable(f"{spec.name} has no tool '{spec.tool}'. Tools: {sorted(tools)}.")
    if spec.arg not in tool.input_schema.get("properties", {}):
        raise PeerUnavailable(
            f"{spec.name}'s {spec.tool} takes no '{spec.arg}': {tool.input_schema}."
        )
    info = client.server_info
    opened = Open(spec, client, version=spec.version or (info.version if info else "?"))
    time_validation(opened)
    opened.tree = [pid for pid in descendants_of_self() if pid not in before]
    matching = [pid for pid in opened.tree if spec.match in " ".join(cmdline(pid))]
    candidates = matching or opened.tree
    opened.server_pid = candidates[-1] if candidates else None
    return opened


def time_validation(opened: Open) -> None:
    """Keep the time the client spends checking structuredContent against the tool's
    outputSchema (jsonschema, inside call_tool): part of the round trip, but the client's."""
    session = opened.client.session
    validate = session.validate_tool_result

    async def timed(name: str, result: CallToolResult) -> None:
        started = time.perf_counter()
        try:
            await validate(name, result)
        finally:
            opened.validate_s += time.perf_counter() - started

    session.validate_tool_result = timed  # type: ignore[method-assign]


def descendants_of_self() -> list[int]:
    """This process's descendants."""
    return descendants(os.getpid())


async def round_trip(opened: Open, query: str, sql: str, truth: Truth, record: bool) -> None:
    """One call (or ping), timed; recorded after warm-up."""
    client, spec = opened.client, opened.spec
    opened.validate_s = 0.0
    started = time.perf_counter()
    if query == "ping":
        await client.send_ping()
        result = None
    else:
        result = await client.call_tool(spec.tool, {spec.arg: sql})
    elapsed = time.perf_counter() - started
    if not record:
        return
    opened.seconds.setdefault(query, []).append(elapsed)
    opened.validating.setdefault(query, []).append(opened.validate_s)
    if result is not None:
        opened.last[query] = result
        if not is_correct(query, spec, result, truth):
            opened.wrong[query] = opened.wrong.get(query, 0) + 1


async def warm_run(
    specs: list[ServerSpec], args: argparse.Namespace, truth: Truth, errlog: TextIO
) -> tuple[list[Open], dict[str, str]]:
    """All servers open; rounds over (ping, Q1, Q2, Q3) x servers in rotating order."""
    skipped: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        servers: list[Open] = []
        for spec in specs:
            try:
                servers.append(await connect(stack, spec, errlog))
            except Exception as exc:  # a peer that cannot start is reported, not fatal
                if spec.name == "sqlsage":
                    raise
                skipped[spec.name] = f"{type(exc).__name__}: {exc}"
        operations = ["ping", *QUERIES]
        for n in range(args.warmup + args.calls):
            record = n >= args.warmup
            order = servers[n % len(servers) :] + servers[: n % len(servers)]
            for query in operations:
                sql = "" if query == "ping" else sql_for(query, n, args.vary_literals)
                for opened in order:
                    await round_trip(opened, query, sql, truth, record)
        for opened in servers:
            opened.tree = [pid for pid in opened.tree if cmdline(pid)]
            opened.memory = memory_of(opened)
    return servers, skipped


def memory_of(opened: Open) -> dict[str, Any]:
    """Peak RSS of the server process and of its whole process tree (launchers included)."""
    own = vm_hwm_mb(opened.server_pid) if opened.server_pid else None
    tree = [vm_hwm_mb(pid) for pid in opened.tree]
    return {
        "server_mb": _r(own),
        "with_launcher_mb": _r(sum(m for m in tree if m is not None)) if tree else None,
        "processes": len(opened.tree),
        "server_argv": cmdline(opened.server_pid) if opened.server_pid else [],
    }


# ---- cold start ----------------------------------------------------------------------------
async def cold_once(spec: ServerSpec, errlog: TextIO) -> tuple[float, float]:
    """Seconds from spawn to a completed initialize + tools/list, and to the first result of
    Q1 asked right after (fresh process)."""
    started = time.perf_counter()
    async with Client(stdio_client(spec.params, errlog=errlog), mode="legacy") as client:
        await client.list_tools()
        listed = time.perf_counter() - started
        result = await client.call_tool(spec.tool, {spec.arg: sql_for("Q1", 0, False)})
        first = time.perf_counter() - started
    if result.is_error:
        raise RuntimeError(f"{spec.name}: Q1 failed at cold start: {result.content}")
    return listed, first


async def cold_starts(
    specs: list[ServerSpec], runs: int, errlog: TextIO
) -> dict[str, list[tuple[float, float]]]:
    """runs timed starts per server after one unmeasured start, servers rotating."""
    out: dict[str, list[tuple[float, float]]] = {spec.name: [] for spec in specs}
    for n in range(runs + 1):
        order = specs[n % len(specs) :] + specs[: n % len(specs)]
        for spec in order:
            seconds = await cold_once(spec, errlog)
            if n:
                out[spec.name].append(seconds)
    return out


async def first_starts(
    make: Callable[[Path], ServerSpec], work: Path, runs: int, errlog: TextIO
) -> list[tuple[float, float]]:
    """Our cold start with an empty cache every time (no start snapshot: the first start
    after an install or upgrade)."""
    out = []
    for n in range(runs):
        out.append(await cold_once(make(work / f"first-start-cache-{n}"), errlog))
    return out


# ---- report --------------------------------------------------------------------------------
def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def ms(seconds: list[float], pct: float) -> float:
    """A percentile of durations in seconds, in ms."""
    return round(percentile(seconds, pct) * 1000, 3)


def summarize(servers: list[Open], truth: Truth) -> dict[str, dict[str, Any]]:
    """Per server and operation: percentiles, bytes, rows, correctness."""
    out: dict[str, dict[str, Any]] = {}
    for opened in servers:
        per: dict[str, Any] = {}
        for query, seconds in opened.seconds.items():
            row: dict[str, Any] = {f"p{p}_ms": ms(seconds, p) for p in (50, 95, 99)}
            result = opened.last.get(query)
            if result is not None:
                row["client_validate_p50_ms"] = ms(opened.validating[query], 50)
                text = text_of(result)
                row["text_bytes"] = len(text.encode())
                row["result_bytes"] = len(
                    result.model_dump_json(by_alias=True, exclude_unset=True).encode()
                )
                row["correct"] = opened.wrong.get(query, 0) == 0
                row["wrong_calls"] = opened.wrong.get(query, 0)
                if query == "Q3":
                    rows, truncated = rows_in_answer(opened.spec, result, text)
                    row["rows"], row["truncated"] = rows, truncated
            per[query] = row
        out[opened.spec.name] = {
            "version": opened.version,
            "tool": f"{opened.spec.tool}({opened.spec.arg})",
            "ops": per,
            "memory": opened.memory,
        }
    return out


def ratios(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """ours / peer: p50 per query and the text bytes of Q3."""
    ours_ops = summary["sqlsage"]["ops"]
    out: dict[str, dict[str, float | None]] = {}
    for name, peer in summary.items():
        if name == "sqlsage":
            continue
        row: dict[str, float | None] = {}
        for query in ("ping", *QUERIES):
            a, b = ours_ops.get(query, {}).get("p50_ms"), peer["ops"].get(query, {}).get("p50_ms")
            row[f"{query}_p50"] = _r(a / b) if a and b else None
        a, b = ours_ops["Q3"].get("text_bytes"), peer["ops"].get("Q3", {}).get("text_bytes")
        row["Q3_text_bytes"] = _r(a / b, 4) if a and b else None
        out[name] = row
    return out


def verdicts(
    summary: dict[str, dict[str, Any]], cold: dict[str, dict[str, float]], python_peers: list[str]
) -> dict[str, dict[str, Any]]:
    """Each target of issue 7: its figure, the limit, met or not."""
    out: dict[str, dict[str, Any]] = {}

    def target(key: str, value: float | None, limit: float | None) -> None:
        met = value is not None and limit is not None and value < limit
        out[key] = {"value": value, "limit": limit, "met": met}

    ours_ops = summary["sqlsage"]["ops"]
    for peer in python_peers:
        if peer in summary:
            for query in ("Q1", "Q2"):
                limit = summary[peer]["ops"][query]["p50_ms"]
                target(f"{query}_p50_ms_below_{peer}", ours_ops[query]["p50_ms"], limit)
    ping = ours_ops["ping"]["p50_ms"]
    target("Q1_p50_ms_below_ping_plus_0.6", ours_ops["Q1"]["p50_ms"], ping + PING_EXTRA_MS)
    if "DBHub" in summary:
        target(
            "Q3_p50_ms_below_DBHub",
            ours_ops["Q3"]["p50_ms"],
            summary["DBHub"]["ops"]["Q3"]["p50_ms"],
        )
    target("Q3_text_bytes_below_64KB", ours_ops["Q3"]["text_bytes"], Q3_TEXT_LIMIT)
    target("cold_start_p50_ms", cold.get("sqlsage", {}).get("p50_ms"), COLD_LIMIT_MS)
    target("peak_rss_mb", summary["sqlsage"]["memory"]["server_mb"], RSS_LIMIT_MB)
    return out


def print_report(
    summary: dict[str, dict[str, Any]],
    rat: dict[str, dict[str, float | None]],
    cold: dict[str, dict[str, float]],
    met: dict[str, dict[str, Any]],
    args: argparse.Namespace,
) -> None:
    """The human tables."""
    print(
        f"\nwarm round trips over stdio: {args.calls} timed calls per cell after {args.warmup} "
        "warm-ups, servers interleaved; ms. validate p50 = the part of the round trip the\n"
        "client spends checking structuredContent against the tool's outputSchema (jsonschema)"
    )
    for query in ("ping", *QUERIES):
        print(f"\n{query}" + ("" if query == "ping" else f": {sql_for(query, 0, False)[:90]}"))
        headers = ["server", "p50", "p95", "p99"]
        if query != "ping":
            headers += ["validate p50", "text B", "result B", "correct"]
        if query == "Q3":
            headers += ["rows", "truncated"]
        rows = []
        for name, s in summary.items():
            r = s["ops"].get(query)
            if r is None:
                continue
            row = [name, r["p50_ms"], r["p95_ms"], r["p99_ms"]]
            if query != "ping":
                correct = "yes" if r["correct"] else f"NO ({r['wrong_calls']} wrong)"
                row += [r["client_validate_p50_ms"], r["text_bytes"], r["result_bytes"], correct]
            if query == "Q3":
                row += [r["rows"], "yes" if r["truncated"] else "no"]
            rows.append(row)
        print_table(headers, rows)

    if rat:
        print("\nours / peer (p50 ratios; < 1 means ours is faster or smaller)")
        keys = list(next(iter(rat.values())))
        print_table(["peer", *keys], [[name, *r.values()] for name, r in rat.items()])

    print(
        "\ncold start (spawn -> initialize + tools/list, fresh process; first result = spawn ->"
        " Q1's result asked right after) and peak RSS"
    )
    rows = []
    for name, s in summary.items():
        c = cold.get(name, {})
        m = s["memory"]
        rows.append(
            [name, s["version"], s["tool"], c.get("p50_ms"), c.get("min_ms"), c.get("max_ms"),
             c.get("first_result_p50_ms"), m["server_mb"], m["with_launcher_mb"]]
        )  # fmt: skip
    for name, c in cold.items():
        if name not in summary:
            rows.append(
                [name, "", "", c["p50_ms"], c["min_ms"], c["max_ms"], c["first_result_p50_ms"],
                 None, None]
            )  # fmt: skip
    print_table(
        ["server", "version", "tool", "cold p50 ms", "min", "max", "first result p50",
         "RSS MB", "with launcher"],
        rows,
    )  # fmt: skip
    print(f"(for orientation, {ISSUE_REFERENCE})")

    print("\ntargets")
    for name, t in met.items():
        print(f"  {name} = {t['value']} < {t['limit']}: {'met' if t['met'] else 'MISSED'}")


# ---- main ----------------------------------------------------------------------------------
def sqlsage_executable() -> Path:
    """The sqlsage script beside this interpreter (the project venv)."""
    for candidate in (Path(sys.executable).parent / "sqlsage", ROOT / ".venv" / "bin" / "sqlsage"):
        if candidate.is_file():
            return candidate
    sys.exit(f"No sqlsage executable beside {sys.executable}; run `make install` first.")


def build_specs(
    work: Path, skip_peers: bool, stdio: str
) -> tuple[list[ServerSpec], dict[str, str]]:
    """Ours, then each peer that installs here (the others, with the reason)."""
    data_dir = work / "data"
    data_dir.mkdir()
    specs = [ours(sqlsage_executable(), DB_PATH, data_dir, work / "cache", stdio=stdio)]
    skipped: dict[str, str] = {}
    if skip_peers:
        return specs, skipped
    makers: list[tuple[str, Callable[[], ServerSpec]]] = [
        ("DBHub", lambda: dbhub(DB_PATH, work)),
        ("mcp-alchemy", lambda: mcp_alchemy(DB_PATH)),
        ("mcp-server-sqlite", lambda: mcp_server_sqlite(DB_PATH)),
    ]
    for name, make in makers:
        try:
            specs.append(make())
        except PeerUnavailable as exc:
            skipped[name] = str(exc)
    return specs, skipped


def cold_summary(seconds: dict[str, list[tuple[float, float]]]) -> dict[str, dict[str, float]]:
    """p50/min/max per server in ms, to tools/list and to the first result."""
    out = {}
    for name, pairs in seconds.items():
        if not pairs:
            continue
        listed = [p[0] for p in pairs]
        first = [p[1] for p in pairs]
        out[name] = {
            "p50_ms": ms(listed, 50),
            "min_ms": ms(listed, 0),
            "max_ms": ms(listed, 100),
            "first_result_p50_ms": ms(first, 50),
        }
    return out


def main() -> None:
    """Run the benchmark and print the tables and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=CALLS, help="Timed calls per cell.")
    parser.add_argument("--warmup", type=int, default=WARMUP, help="Unmeasured calls first.")
    parser.add_argument("--cold-runs", type=int, default=COLD_RUNS, help="Timed cold starts.")
    parser.add_argument("--skip-peers", action="store_true", help="Only our server.")
    parser.add_argument(
        "--vary-literals", action="store_true", help="A no-op literal that changes every call."
    )
    parser.add_argument(
        "--stdio",
        choices=("loop", "sdk"),
        default="loop",
        help="Our stdio transport: our own on the event loop (default) or the SDK's.",
    )
    args = parser.parse_args()
    if not DB_PATH.is_file():
        print(
            f"SKIP: Chinook not found at {DB_PATH} (../shared/data/chinook/Chinook_Sqlite.sqlite)."
        )
        print('RESULT {"skipped": "Chinook SQLite file missing"}')
        sys.exit(0)
    truth = ground_truth(DB_PATH)
    with tempfile.TemporaryDirectory(prefix="sqlsage-mcp-bench-") as tmp:
        work = Path(tmp)
        specs, skipped = build_specs(work, args.skip_peers, args.stdio)
        with open(work / "servers.stderr", "w", encoding="utf-8") as errlog:
            servers, failed = asyncio.run(warm_run(specs, args, truth, errlog))
            skipped.update(failed)
            summary = summarize(servers, truth)
            started = [s.spec for s in servers]
            dbhub_argv = summary.get("DBHub", {}).get("memory", {}).get("server_argv")
            if dbhub_argv:
                dbhub_spec = next(s for s in started if s.name == "DBHub")
                started.append(direct(dbhub_spec, dbhub_argv))
            timed = asyncio.run(cold_starts(started, args.cold_runs, errlog))
            if args.stdio == "loop":
                exe, data = sqlsage_executable(), work / "data"

                def fresh(cache: Path) -> ServerSpec:
                    return ours(exe, DB_PATH, data, cache, name="sqlsage, first start")

                firsts = first_starts(fresh, work, args.cold_runs, errlog)
                timed["sqlsage, first start"] = asyncio.run(firsts)
            cold = cold_summary(timed)
    for name, why in skipped.items():
        print(f"{name} skipped: {why}")
    python_peers = [s.name for s in specs if s.python_peer]
    rat = ratios(summary)
    met = verdicts(summary, cold, python_peers)
    print_report(summary, rat, cold, met, args)
    emit_result(
        {
            "benchmark": "mcp_latency",
            "calls": args.calls,
            "warmup": args.warmup,
            "cold_runs": args.cold_runs,
            "vary_literals": args.vary_literals,
            "stdio": args.stdio,
            "servers": summary,
            "skipped": skipped,
            "ratios": rat,
            "cold_start": cold,
            "targets": met,
        }
    )


if __name__ == "__main__":
    main()
