"""Execution accuracy of the builtin offline model through the whole graph, by the eval harness
(`sqlsage eval run --model builtin`, official Spider / BIRD semantics):

(a) evals/data/sample_builtin.jsonl: our own question set on the bundled sample database;
(b) Spider dev: every question whose database is present (972 of 1,034), no knowledge files;
(c) BIRD mini-dev: the 140 questions whose databases are present, with evidence.

The builtin model is rule-based: this shows what it covers, not a leaderboard figure.

    .venv/bin/python benchmarks/builtin_accuracy.py [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from _common import emit_result, require_shared_data

from evals.datasets import SAMPLE_BUILTIN
from evals.runner import EvalOptions, run_agent
from server.settings import Settings


def report(name: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Print one run's figures; return them."""
    agent = summary["agent"]
    codes = summary["errors_by_code"]
    print(
        f"\n{name}: {summary['n_correct']}/{summary['n_scored']} = "
        f"{summary['execution_accuracy']:.1%} execution accuracy; valid SQL "
        f"{summary['valid_sql_rate']:.1%}; exact-set {summary['exact_set_match']:.1%}; "
        f"{codes.get('unanswerable', 0)} honest refusals; p50 {agent['latency_ms_p50']:.0f} ms, "
        f"p95 {agent['latency_ms_p95']:.0f} ms per question; {summary['elapsed_s']:.0f} s total"
    )
    for key in ("by_tag", "by_difficulty"):
        for tag, row in (summary.get(key) or {}).items():
            print(f"  {tag:16s} {row['correct']:4d}/{row['n']:<4d} {row['accuracy']:.1%}")
    print(f"  outcomes: {codes}")
    return {
        "n": summary["n_scored"],
        "correct": summary["n_correct"],
        "accuracy_pct": round(100 * summary["execution_accuracy"], 1),
        "valid_sql_pct": round(100 * summary["valid_sql_rate"], 1),
        "refused": codes.get("unanswerable", 0),
        "p50_ms": agent["latency_ms_p50"],
        "p95_ms": agent["latency_ms_p95"],
        "elapsed_s": summary["elapsed_s"],
    }


def main() -> None:
    """Run the three sets and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only", choices=("sample", "spider", "bird"), default=None)
    args = parser.parse_args()
    data = require_shared_data()
    work = Path(tempfile.mkdtemp(prefix="sqlsage-builtin-"))
    base = Settings(data_dir=work / "state")
    sets = {
        "sample": (SAMPLE_BUILTIN, "jsonl"),
        "spider": (data / "spider_dev", "spider"),
        "bird": (data / "bird_minidev" / "mini_dev_sqlite.json", "bird"),
    }
    figures: dict[str, Any] = {}
    for name, (dataset, fmt) in sets.items():
        if args.only and name != args.only:
            continue
        options = EvalOptions(dataset, fmt, work / name, model="builtin", workers=args.workers)
        summary = asyncio.run(run_agent(options, base=base))
        figures[name] = report(
            f"{name} ({dataset.name}; report {work / name / 'report.md'})", summary
        )
    emit_result({"benchmark": "builtin_accuracy", **figures})


if __name__ == "__main__":
    main()
