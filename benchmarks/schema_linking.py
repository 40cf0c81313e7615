"""Schema linking: does semantic_search return the tables and columns each gold query uses?

Every Spider dev (19 databases) and BIRD mini-dev (3 databases, described by their
database_description CSVs as a comments file) database is indexed with the builtin MiniLM
embedding in a temporary directory; then every question is searched with four variants at
k = 3, 5, 8. Gold tables and columns come from the gold SQL (sqlglot; aliases resolved).

    .venv/bin/python benchmarks/schema_linking.py
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import emit_result, median, percentile, print_table, require_shared_data
from _gold import gold_columns, gold_tables, named_in, renderings, schema_of
from _suites import (
    Question,
    SuiteDatabase,
    bird_databases,
    bird_questions,
    open_database,
    spider_databases,
    spider_questions,
)

from memory.embeddings import MiniLMEmbedding
from memory.index import KnowledgeIndex
from tools.databases import Database
from tools.schema_lookup import schema_lookup
from tools.semantic_search import SearchResult, semantic_search

KS = (3, 5, 8)
VARIANTS: dict[str, tuple[str, bool]] = {  # name -> (mode, expand_fk)
    "lexical": ("lexical", False),
    "vector": ("vector", False),
    "hybrid": ("hybrid", False),
    "hybrid+fk": ("hybrid", True),
}
TARGET_K, TARGET_VARIANT = 5, "hybrid+fk"
TARGET_RECALL = {"spider": 97.0, "bird": 90.0}
TARGET_MEDIAN_TOKENS = 1500
WORST = 15
RANK_K = 50  # how deep to look for a missed table's rank


@dataclass(frozen=True)
class Gold:
    """A question with the tables and (table, column) pairs its gold SQL reads, lowercased."""

    question: Question
    tables: frozenset[str]
    columns: frozenset[tuple[str, str]]
    db_tables: int


@dataclass(frozen=True)
class Outcome:
    """How one search did against its gold."""

    all_tables: bool
    returned: int
    share: float
    columns_found: int
    tokens: float
    tables: tuple[str, ...]


# ---- scoring -------------------------------------------------------------------------------
def score(gold: Gold, result: SearchResult) -> Outcome:
    """Compare one search result with its gold."""
    returned = tuple(t.lower() for t in result.tables)
    rendered = renderings(result.context)
    columns_found = sum(named_in(c, rendered.get(t, "")) for t, c in gold.columns)
    return Outcome(
        all_tables=gold.tables <= set(returned),
        returned=len(returned),
        share=len(returned) / gold.db_tables if gold.db_tables else 0.0,
        columns_found=columns_found,
        tokens=len(result.context) / 4,
        tables=returned,
    )


def summarize(golds: Sequence[Gold], outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Recall, size and rendering figures of one suite x variant x k."""
    gold_columns_total = sum(len(g.columns) for g in golds)
    tokens = [o.tokens for o in outcomes]
    count = len(outcomes) or 1
    return {
        "questions": len(outcomes),
        "table_recall_pct": round(100 * sum(o.all_tables for o in outcomes) / count, 2),
        "tables_mean": round(sum(o.returned for o in outcomes) / count, 2),
        "table_share_pct": round(100 * sum(o.share for o in outcomes) / count, 1),
        "column_recall_pct": round(
            100 * sum(o.columns_found for o in outcomes) / (gold_columns_total or 1), 2
        ),
        "tokens_p50": round(median(tokens)),
        "tokens_p90": round(percentile(tokens, 90)),
    }


# ---- running -------------------------------------------------------------------------------
@dataclass
class Suite:
    """One suite's databases, built index and gold."""

    name: str
    databases: dict[str, Database]
    golds: list[Gold]
    build_s: float
    documents: int
    full_tokens: dict[str, float]  # db -> tokens of the full summary schema rendering


def prepare(
    name: str,
    dbs: list[SuiteDatabase],
    questions: list[Question],
    index: KnowledgeIndex,
    work: Path,
) -> Suite:
    """Index every database of a suite (timed) and extract the gold of every question."""
    databases = {d.name: open_database(d, work) for d in dbs}
    started = time.perf_counter()
    documents = 0
    for database in databases.values():
        report = index.build(database)
        documents += report.documents
        if report.problems:
            print(f"  {database.name}: {report.problems}")
    build_s = time.perf_counter() - started
    schemas = {n: schema_of(d) for n, d in databases.items()}
    full_tokens = {
        n: len(schema_lookup(d, detail="summary", limit=500).text) / 4 for n, d in databases.items()
    }
    golds = []
    for q in questions:
        database, schema = databases[q.db_id], schemas[q.db_id]
        golds.append(
            Gold(q, gold_tables(q.sql, database), gold_columns(q.sql, schema), len(schema))
        )
    return Suite(name, databases, golds, build_s, documents, full_tokens)


def search_all(index: KnowledgeIndex, suite: Suite) -> dict[tuple[str, int], list[Outcome]]:
    """Outcomes per (variant, k), in question order."""
    outcomes: dict[tuple[str, int], list[Outcome]] = {}
    for variant, (mode, expand_fk) in VARIANTS.items():
        for k in KS:
            outcomes[variant, k] = [
                score(
                    g,
                    semantic_search(
                        index,
                        suite.databases[g.question.db_id],
                        g.question.text,
                        k=k,
                        mode=mode,  # type: ignore[arg-type]
                        expand_fk=expand_fk,
                    ),
                )
                for g in suite.golds
            ]
    return outcomes


def baseline(suite: Suite) -> dict[str, float]:
    """Return every table: full recall, full share, the whole schema's tokens."""
    tokens = [suite.full_tokens[g.question.db_id] for g in suite.golds]
    return {
        "questions": len(suite.golds),
        "table_recall_pct": 100.0,
        "tables_mean": round(sum(g.db_tables for g in suite.golds) / (len(suite.golds) or 1), 2),
        "table_share_pct": 100.0,
        "column_recall_pct": 100.0,
        "tokens_p50": round(median(tokens)),
        "tokens_p90": round(percentile(tokens, 90)),
    }


def misses(index: KnowledgeIndex, suite: Suite, outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Questions whose gold tables were not all returned, with each missed table's rank."""
    found = []
    for gold, outcome in zip(suite.golds, outcomes, strict=True):
        if outcome.all_tables:
            continue
        database = suite.databases[gold.question.db_id]
        ranking = semantic_search(
            index, database, gold.question.text, k=RANK_K, expand_fk=False
        ).tables
        ranks = {t.lower(): i + 1 for i, t in enumerate(ranking)}
        missing = sorted(gold.tables - set(outcome.tables))
        found.append(
            {
                "suite": suite.name,
                "db": gold.question.db_id,
                "question": gold.question.text,
                "gold": sorted(gold.tables),
                "returned": list(outcome.tables),
                "missing": {t: ranks.get(t) for t in missing},
            }
        )
    return found


def worst_first(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """More tables missed first, then the missed table ranked lowest (unranked is lowest)."""

    def key(m: dict[str, Any]) -> tuple[int, int]:
        return (-len(m["missing"]), -max(r or RANK_K + 1 for r in m["missing"].values()))

    return sorted(found, key=key)


# ---- output --------------------------------------------------------------------------------
def print_results(results: dict[str, dict[str, Any]]) -> None:
    """One row per suite x variant x k, and the all-tables baseline."""
    headers = ["suite", "variant", "k", "tables recall %", "tables", "share %"]
    headers += ["column recall %", "tokens p50", "tokens p90"]
    rows = []
    for suite, by_variant in results.items():
        for key, r in by_variant.items():
            variant, _, k = key.rpartition("@")
            figures = ("table_recall_pct", "tables_mean", "table_share_pct", "column_recall_pct")
            rows.append(
                [suite, variant, k, *(r[f] for f in figures), r["tokens_p50"], r["tokens_p90"]]
            )
    print_table(headers, rows)


def print_worst(worst: list[dict[str, Any]], k: int) -> None:
    """The worst misses, one block each."""
    print(
        f"\n{len(worst)} worst misses ({TARGET_VARIANT}, k={k}); rank = rank in hybrid k={RANK_K}"
    )
    for m in worst:
        missing = ", ".join(f"{t} (rank {r or f'>{RANK_K}'})" for t, r in m["missing"].items())
        question = " ".join(m["question"].split())
        print(f"- [{m['suite']}/{m['db']}] {question[:220]}")
        print(f"    gold: {', '.join(m['gold'])} | returned: {', '.join(m['returned'])}")
        print(f"    missed: {missing}")


def main() -> None:
    """Index, search, score; print the tables, the targets, the worst misses and RESULT."""
    data = require_shared_data()
    spider_dbs, bird_dbs = spider_databases(data), bird_databases(data)
    work = Path(tempfile.mkdtemp(prefix="sqlsage-linking-"))
    try:
        index = KnowledgeIndex(path=work / "index", embedding=MiniLMEmbedding())
        suites = [
            prepare("spider", spider_dbs, spider_questions(data, spider_dbs), index, work),
            prepare("bird", bird_dbs, bird_questions(data, bird_dbs), index, work),
        ]
        results: dict[str, dict[str, Any]] = {}
        builds: dict[str, Any] = {}
        found: list[dict[str, Any]] = []  # misses at the target k
        below: list[dict[str, Any]] = []  # further misses at the smallest k
        for suite in suites:
            started = time.perf_counter()
            outcomes = search_all(index, suite)
            search_s = time.perf_counter() - started
            results[suite.name] = {
                f"{variant}@{k}": summarize(suite.golds, o) for (variant, k), o in outcomes.items()
            }
            results[suite.name]["all tables (baseline)@-"] = baseline(suite)
            builds[suite.name] = {
                "databases": len(suite.databases),
                "questions": len(suite.golds),
                "documents": suite.documents,
                "build_s": round(suite.build_s, 2),
                "search_s": round(search_s, 2),
                "no_gold_tables": sum(not g.tables for g in suite.golds),
                "gold_columns": sum(len(g.columns) for g in suite.golds),
            }
            at_target = misses(index, suite, outcomes[TARGET_VARIANT, TARGET_K])
            found += at_target
            seen = {m["question"] for m in at_target}
            below += [
                m
                for m in misses(index, suite, outcomes[TARGET_VARIANT, KS[0]])
                if m["question"] not in seen
            ]
        for suite in suites:
            for database in suite.databases.values():
                database.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"Schema linking with semantic_search (builtin MiniLM embedding); load average {load}")
    print_table(
        ["suite", "databases", "questions", "documents", "index build s", "searches s"],
        [
            [n, b["databases"], b["questions"], b["documents"], b["build_s"], b["search_s"]]
            for n, b in builds.items()
        ],
    )
    print()
    print_results(results)
    targets = check_targets(results)
    worst = worst_first(found)[:WORST]
    print_worst(worst, TARGET_K)
    more = worst_first(below)[: WORST - len(worst)]
    if more:
        print(f"\nOnly {len(worst)} misses at k={TARGET_K}; the worst further misses at k={KS[0]}:")
        print_worst(more, KS[0])
    emit_result(
        {
            "benchmark": "schema_linking",
            "embedding": MiniLMEmbedding.name(),
            "ks": list(KS),
            "builds": builds,
            "results": results,
            "targets": targets,
            "misses_at_target": {s: sum(m["suite"] == s for m in found) for s in builds},
            "worst_misses": worst,
            f"worst_further_misses_k{KS[0]}": more,
        }
    )


def check_targets(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Print each target as met or MISSED, and return them."""
    print()
    key = f"{TARGET_VARIANT}@{TARGET_K}"
    targets: dict[str, Any] = {}
    for suite, wanted in TARGET_RECALL.items():
        got = results[suite][key]["table_recall_pct"]
        targets[f"{suite}_recall"] = {"target": wanted, "value": got, "met": got >= wanted}
        verdict = "met" if got >= wanted else "MISSED"
        print(f"target {suite} all-gold-tables recall >= {wanted} % at {key}: {verdict} ({got} %)")
    for suite in TARGET_RECALL:
        got = results[suite][key]["tokens_p50"]
        met = got < TARGET_MEDIAN_TOKENS
        targets[f"{suite}_median_tokens"] = {
            "target": TARGET_MEDIAN_TOKENS,
            "value": got,
            "met": met,
        }
        verdict = "met" if met else "MISSED"
        print(
            f"target {suite} median rendering < {TARGET_MEDIAN_TOKENS:,} tokens at {key}: "
            f"{verdict} ({got})"
        )
    return targets


if __name__ == "__main__":
    main()
