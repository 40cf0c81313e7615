"""Knowledge index performance: build and re-index time, search latency, resident memory.

(a) A synthetic SQLite schema of 1,000 tables x 20 columns (benchmarks/_synthetic.py) is
    indexed from scratch; then 10 tables get a new column each and the index is brought up to
    date (only those 10 groups may change).
(b) semantic_search latency (hybrid + foreign-key expansion, k=5) on the 3 BIRD mini-dev
    databases with a warm index: every question, PASSES times, after one untimed pass.
(c) Resident memory (VmRSS) of a fresh process that indexes 20 databases (the 19 Spider dev
    ones and one BIRD) and searches each once; and of one that opens that index and searches.

    .venv/bin/python benchmarks/index_perf.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import SHARED_DATA, emit_result, ms_summary, print_table, require_shared_data
from _suites import (
    bird_databases,
    bird_questions,
    open_database,
    spider_databases,
    spider_questions,
)
from _synthetic import add_column, create_schema

from memory.embeddings import MiniLMEmbedding
from memory.index import KnowledgeIndex
from tools.databases import Database, DatabaseConfig
from tools.semantic_search import semantic_search

TABLES, COLUMNS, CHANGED = 1000, 20, 10
PASSES = 3
SEARCH_K = 5
TARGET_BUILD_S, TARGET_REINDEX_S = 90.0, 5.0
TARGET_P50_MS, TARGET_P99_MS = 30.0, 100.0
RSS_DATABASES = 20


def verdict(ok: bool) -> str:
    """met or MISSED."""
    return "met" if ok else "MISSED"


# ---- (a) synthetic schema ------------------------------------------------------------------
def synthetic_build(work: Path) -> dict[str, Any]:
    """Index the synthetic schema from scratch, change 10 tables, index again."""
    path = work / "synthetic.sqlite"
    started = time.perf_counter()
    names = create_schema(path, tables=TABLES, columns=COLUMNS)
    created_s = time.perf_counter() - started
    database = Database(DatabaseConfig(name="synthetic", url=f"sqlite:///{path}"))
    index = KnowledgeIndex(path=work / "index-synthetic", embedding=MiniLMEmbedding())
    index.embed(["warm up the embedding model"])  # model loading is not indexing
    started = time.perf_counter()
    full = index.build(database)
    full_s = time.perf_counter() - started

    changed = names[:: TABLES // CHANGED][:CHANGED]
    add_column(path, changed)
    database.catalog.refresh()  # what a running server does when told the schema changed
    started = time.perf_counter()
    again = index.build(database)
    again_s = time.perf_counter() - started
    database.dispose()
    return {
        "tables": TABLES,
        "columns": COLUMNS,
        "create_db_s": round(created_s, 2),
        "build_s": round(full_s, 2),
        "documents": full.documents,
        "embedded": full.embedded,
        "docs_per_s": round(full.embedded / full_s, 1) if full_s else None,
        "reindex_s": round(again_s, 3),
        "reindex_groups_changed": again.groups_changed,
        "reindex_embedded": again.embedded,
        "reindex_documents": again.documents,
        "problems": full.problems + again.problems,
    }


# ---- (b) search latency --------------------------------------------------------------------
def search_latency(work: Path, data: Path) -> dict[str, Any]:
    """Per-call latency of semantic_search over every BIRD question, PASSES times, warm."""
    dbs = bird_databases(data)
    questions = bird_questions(data, dbs)
    databases = {d.name: open_database(d, work) for d in dbs}
    index = KnowledgeIndex(path=work / "index-bird", embedding=MiniLMEmbedding())
    started = time.perf_counter()
    for database in databases.values():
        index.build(database)
    build_s = time.perf_counter() - started

    def search(text: str, db_id: str) -> None:
        semantic_search(index, databases[db_id], text, k=SEARCH_K)

    for q in questions:  # warm-up: document cache, lexical index, FK graph, catalog
        search(q.text, q.db_id)
    seconds = []
    for _ in range(PASSES):
        for q in questions:
            started = time.perf_counter()
            search(q.text, q.db_id)
            seconds.append(time.perf_counter() - started)
    embed = []
    for q in questions:  # the question's embedding alone, for where the time goes
        started = time.perf_counter()
        index.embed([q.text])
        embed.append(time.perf_counter() - started)
    for database in databases.values():
        database.dispose()
    return {
        "databases": len(databases),
        "questions": len(questions),
        "calls": len(seconds),
        "k": SEARCH_K,
        "build_s": round(build_s, 2),
        **ms_summary(seconds, (50, 90, 99)),
        "max_ms": round(max(seconds) * 1000, 3) if seconds else None,
        "embed_only": ms_summary(embed, (50, 99)),
    }


# ---- (c) resident memory (in a fresh process) ----------------------------------------------
def rss_mb() -> float:
    """VmRSS of this process in MiB (nan when /proc is unavailable)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return float("nan")
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), None)
    return round(int(line.split()[1]) / 1024, 1) if line else float("nan")


def rss_child(work: Path, build: bool) -> dict[str, Any]:
    """In this (fresh) process: index or open 20 databases, search each once, report RSS."""
    data = SHARED_DATA
    started_mb = rss_mb()
    spider = spider_databases(data)
    picked = (spider + bird_databases(data)[:1])[:RSS_DATABASES]
    firsts: dict[str, str] = {}
    for q in spider_questions(data, spider) + bird_questions(data, picked):
        firsts.setdefault(q.db_id, q.text)
    databases = [open_database(d, work) for d in picked]
    index = KnowledgeIndex(path=work / "index-rss", embedding=MiniLMEmbedding())
    documents = 0
    for database in databases:
        documents += index.build(database).documents if build else 0
    indexed_mb = rss_mb()
    for database in databases:
        semantic_search(index, database, firsts.get(database.name, "how many rows"), k=SEARCH_K)
    for database in databases:
        database.dispose()
    return {
        "databases": len(databases),
        "documents": documents,
        "rss_start_mb": started_mb,
        "rss_after_index_mb": indexed_mb,
        "rss_after_search_mb": rss_mb(),
    }


def memory(work: Path) -> dict[str, Any]:
    """RSS of a process that builds the 20 indexes, then of one that reuses them."""
    found = {}
    for label, flag in (("build_and_search", "--build"), ("open_and_search", "--open")):
        done = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(work), flag],
            capture_output=True,
            text=True,
            check=True,
        )
        found[label] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


# ---- output --------------------------------------------------------------------------------
def main() -> None:
    """Run (a), (b), (c); print tables, targets and the RESULT line."""
    data = require_shared_data()
    work = Path(tempfile.mkdtemp(prefix="sqlsage-indexperf-"))
    try:
        synthetic = synthetic_build(work)
        latency = search_latency(work, data)
        rss = memory(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_report(synthetic, latency, rss)


def print_report(synthetic: dict[str, Any], latency: dict[str, Any], rss: dict[str, Any]) -> None:
    """The human tables, the targets and RESULT."""
    s = synthetic
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end: {load} (2 cores; other work slows every figure)")
    print(f"(a) synthetic schema: {s['tables']:,} tables x {s['columns']} columns")
    print_table(
        ["step", "seconds", "groups changed", "embedded", "documents"],
        [
            ["create the SQLite file", s["create_db_s"], None, None, None],
            ["index from scratch", s["build_s"], s["tables"], s["embedded"], s["documents"]],
            [
                f"re-index after {CHANGED} ALTERs",
                s["reindex_s"],
                s["reindex_groups_changed"],
                s["reindex_embedded"],
                s["reindex_documents"],
            ],
        ],
    )
    print(f"embedding throughput while indexing: {s['docs_per_s']} documents/s")
    targets = {
        "build": s["build_s"] < TARGET_BUILD_S,
        "reindex": s["reindex_s"] < TARGET_REINDEX_S,
        "reindex_groups": s["reindex_groups_changed"] == CHANGED,
        "p50": latency["p50_ms"] < TARGET_P50_MS,
        "p99": latency["p99_ms"] < TARGET_P99_MS,
    }
    print(f"target build < {TARGET_BUILD_S:g} s: {verdict(targets['build'])}")
    print(f"target re-index < {TARGET_REINDEX_S:g} s: {verdict(targets['reindex'])}")
    print(f"target groups changed == {CHANGED}: {verdict(targets['reindex_groups'])}")

    lat = latency
    print(
        f"\n(b) semantic_search latency, BIRD mini-dev ({lat['databases']} databases, warm; "
        f"hybrid + FK, k={lat['k']}; {lat['questions']} questions x {PASSES})"
    )
    print_table(
        ["calls", "p50 ms", "p90 ms", "p99 ms", "max ms", "embed p50 ms", "embed p99 ms"],
        [
            [
                lat["calls"],
                lat["p50_ms"],
                lat["p90_ms"],
                lat["p99_ms"],
                lat["max_ms"],
                lat["embed_only"]["p50_ms"],
                lat["embed_only"]["p99_ms"],
            ]
        ],
    )
    print(
        f"target p50 < {TARGET_P50_MS:g} ms: {verdict(targets['p50'])}; "
        f"p99 < {TARGET_P99_MS:g} ms: {verdict(targets['p99'])}"
    )

    print("\n(c) resident memory (VmRSS, MiB) of a fresh process, 20 databases")
    print_table(
        ["process", "documents", "after imports", "after indexing", "after 20 searches"],
        [
            [
                label,
                r["documents"] or None,
                r["rss_start_mb"],
                r["rss_after_index_mb"],
                r["rss_after_search_mb"],
            ]
            for label, r in rss.items()
        ],
    )
    emit_result(
        {
            "benchmark": "index_perf",
            "load_average": os.getloadavg(),
            "synthetic": synthetic,
            "search_latency": latency,
            "rss": rss,
            "targets_met": targets,
        }
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--rss-child":
        print(json.dumps(rss_child(Path(sys.argv[2]), build=sys.argv[3] == "--build")))
    else:
        main()
