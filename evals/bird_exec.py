"""BIRD's execution match exactly as its official `evaluation_ex.py` computes it:
`set(predicted_rows) == set(gold_rows)`. Row order and duplicate rows are ignored, column
order matters, values compare with Python's `==`. A prediction that fails or runs past the
time limit (the official meta_time_out, 30 s) is wrong. Per-difficulty accuracy (simple,
moderate, challenging) is in evals/metrics.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from evals.spider_exec import ExecVerdict, GoldFailed, Row, failed_prediction, run_query

DEFAULT_TIMEOUT_S = 30.0


def exec_match(
    db_path: Path | str, predicted: str, gold: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> ExecVerdict:
    """BIRD's verdict for one prediction against its gold query on one database."""
    try:
        gold_rows = run_query(db_path, gold, timeout_s, lenient_text=False)
    except sqlite3.Error as error:
        raise GoldFailed(f"{type(error).__name__}: {error}") from error
    try:
        predicted_rows = run_query(db_path, predicted, timeout_s, lenient_text=False)
    except sqlite3.Error as error:
        return failed_prediction(error)
    if set(predicted_rows) == set(gold_rows):
        return ExecVerdict(True)
    return ExecVerdict(False, _difference(gold_rows, predicted_rows))


def _difference(gold: list[Row], predicted: list[Row]) -> str:
    missing = len(set(gold) - set(predicted))
    extra = len(set(predicted) - set(gold))
    return f"{missing} gold row(s) missing, {extra} row(s) not in the gold result"
