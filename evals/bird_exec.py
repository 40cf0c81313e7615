"""BIRD's execution match exactly as its official `evaluation_ex.py` computes it:
`set(predicted_rows) == set(gold_rows)`. Row order and duplicate rows are ignored, column
order matters, values compare with Python's `==`. A prediction that fails or runs past the
time limit (the official meta_time_out, 30 s) is wrong. Accuracy is also reported per
difficulty (simple / moderate / challenging).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from evals.spider_exec import ExecVerdict, GoldFailed, Row, run_query

DEFAULT_TIMEOUT_S = 30.0
DIFFICULTIES = ("simple", "moderate", "challenging")


def exec_match(
    db_path: Path | str, predicted: str, gold: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> ExecVerdict:
    """BIRD's verdict for one prediction against its gold query on one database."""
    try:
        gold_rows = run_query(db_path, gold, timeout_s)
    except sqlite3.Error as error:
        raise GoldFailed(f"{type(error).__name__}: {error}") from error
    try:
        predicted_rows = run_query(db_path, predicted, timeout_s)
    except sqlite3.Error as error:
        return ExecVerdict(False, f"prediction failed: {type(error).__name__}: {error}")
    if set(predicted_rows) == set(gold_rows):
        return ExecVerdict(True)
    return ExecVerdict(False, _difference(gold_rows, predicted_rows))


def by_difficulty(verdicts: Iterable[tuple[str | None, bool]]) -> dict[str, dict[str, float]]:
    """Accuracy per difficulty (and 'total'), as the official report tables it."""
    counts: dict[str, list[int]] = {}
    for difficulty, correct in verdicts:
        for key in (difficulty or "unknown", "total"):
            n, ok = counts.setdefault(key, [0, 0])
            counts[key] = [n + 1, ok + int(correct)]
    order = [*DIFFICULTIES, "unknown", "total"]
    return {
        key: {"n": n, "correct": ok, "accuracy": ok / n}
        for key in order
        if key in counts
        for n, ok in [counts[key]]
    }


def _difference(gold: list[Row], predicted: list[Row]) -> str:
    missing = len(set(gold) - set(predicted))
    extra = len(set(predicted) - set(gold))
    return f"{missing} gold row(s) missing, {extra} row(s) not in the gold result"
