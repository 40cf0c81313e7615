"""Eval scoring throughput: `sqlsage eval run --predictions` over Spider dev with the gold SQL as
predictions (972 questions whose database exists, 62 skipped), with 1 and 2 workers, and over
BIRD mini-dev (140 scored). Each run in a fresh output folder (nothing resumed); wall time from
the call to summary.json written, 3 runs per setting, median and best.

    .venv/bin/python benchmarks/eval_scoring.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, emit_result, print_table, require_shared_data

sys.path.insert(0, str(ROOT))

from evals.runner import EvalOptions, score_predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data = require_shared_data()
    spider, bird = data / "spider_dev", data / "bird_minidev"
    settings = [
        ("Spider dev", spider, "spider", spider / "dev_gold.sql", 1),
        ("Spider dev", spider, "spider", spider / "dev_gold.sql", 2),
        (
            "BIRD mini-dev",
            bird / "mini_dev_sqlite.json",
            "bird",
            bird / "mini_dev_sqlite_gold.sql",
            1,
        ),
        (
            "BIRD mini-dev",
            bird / "mini_dev_sqlite.json",
            "bird",
            bird / "mini_dev_sqlite_gold.sql",
            2,
        ),
    ]
    rows, results = [], {}
    for name, dataset, fmt, predictions, workers in settings:
        times, scored, correct = [], 0, 0
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as out:
                started = time.perf_counter()
                summary = score_predictions(
                    EvalOptions(
                        Path(dataset), fmt, Path(out), predictions=predictions, workers=workers
                    )
                )
                times.append(time.perf_counter() - started)
                scored, correct = summary["n_scored"], summary["n_correct"]
        median = statistics.median(times)
        rows.append(
            [name, workers, f"{correct}/{scored}", f"{median:.2f}", f"{min(times):.2f}",
             f"{scored / median:,.0f}"]
        )  # fmt: skip
        results[f"{fmt}_w{workers}"] = {"scored": scored, "correct": correct, "median_s": median,
                                        "questions_per_s": scored / median}  # fmt: skip
    print_table(["dataset", "workers", "correct", "median s", "best s", "scored q/s"], rows)
    emit_result(results)


if __name__ == "__main__":
    main()
