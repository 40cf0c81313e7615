"""Scoring a run: each question's verdict appended to DIR/results.jsonl as soon as it is known
(a crash or Ctrl-C loses at most the questions in flight; a rerun skips what is there), and
DIR/summary.json from all of them. One run per output folder at a time (a lock refuses a
second)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from evals import bird_exec, spider_exec
from evals.datasets import Dataset, EvalItem
from evals.metrics import agent_figures, by_difficulty, by_tag, rate
from evals.spider_exec import ExecVerdict, GoldFailed
from evals.sql_match import exact_set_match
from tools.errors import INVALID_ARGUMENT, SqlsageError

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
DATABASE_MISSING = "database_missing"
DATASET_ERROR = "dataset_error"


@dataclass(frozen=True)
class Scoring:
    """How predictions are judged: the dataset's official semantics and their options."""

    format: str
    timeout_s: float = 30.0
    keep_distinct: bool = False

    @classmethod
    def for_format(
        cls, fmt: str, timeout_s: float | None = None, keep_distinct: bool = False
    ) -> Scoring:
        """The scoring of a format, with its official per-query time limit unless given
        (Spider's TIMEOUT 60 s; BIRD's meta_time_out 30 s; ours 30 s)."""
        if timeout_s is None:
            spider = fmt == "spider"
            timeout_s = spider_exec.DEFAULT_TIMEOUT_S if spider else bird_exec.DEFAULT_TIMEOUT_S
        return cls(fmt, timeout_s, keep_distinct)

    def verdict(self, item: EvalItem, predicted: str) -> ExecVerdict:
        """The official verdict for this dataset (JSONL questions use Spider's)."""
        assert item.db_path is not None
        if self.format == "bird":
            return bird_exec.exec_match(
                item.db_path, predicted, item.gold_sql, timeout_s=self.timeout_s
            )
        return spider_exec.exec_match(
            item.db_path,
            predicted,
            item.gold_sql,
            keep_distinct=self.keep_distinct,
            timeout_s=self.timeout_s,
            suite=self.format == "spider",
        )

    def score(self, item: EvalItem, predicted: str | None, **extra: Any) -> dict[str, Any]:
        """One results.jsonl record: correct true/false, or null when the question is skipped
        (database missing) or its gold SQL fails (a dataset error). `valid_sql` says whether
        the prediction ran; `exact_match` is sqlglot's structural match (informative)."""
        record: dict[str, Any] = {
            "index": item.index,
            "question_id": item.question_id,
            "db": item.db,
            "question": item.question,
            "difficulty": item.difficulty,
            "tags": list(item.tags),
            "gold_sql": item.gold_sql,
            "pred_sql": predicted,
            "correct": None,
            "valid_sql": None,
            "exact_match": None,
            "error": None,
            **extra,
        }
        if item.db_path is None:
            record["error"] = {"code": DATABASE_MISSING, "message": item.why_skipped}
            return record
        if not predicted or not predicted.strip():
            record.update(
                correct=False,
                valid_sql=False,
                exact_match=False,
                error=record["error"] or {"code": "no_sql", "message": "No SQL predicted."},
            )
            return record
        started = time.perf_counter()
        try:
            verdict = self.verdict(item, predicted)
        except GoldFailed as failure:
            record["error"] = {"code": DATASET_ERROR, "message": f"The gold SQL fails: {failure}"}
            return record
        record["score_ms"] = round((time.perf_counter() - started) * 1000, 2)
        record["correct"] = verdict.correct
        record["valid_sql"] = verdict.ran
        record["exact_match"] = exact_set_match(predicted, item.gold_sql)
        if not verdict.correct:
            code = "timeout" if verdict.timed_out else "invalid_sql" if not verdict.ran else None
            record["error"] = {"code": code or "wrong_result", "message": verdict.reason}
        return record


@contextmanager
def output_dir(path: Path | str) -> Iterator[Path]:
    """The run's folder, created, and held by this run alone while it runs."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / ".run.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Another run is writing to '{folder}'.",
            hint="Wait for it to finish, or pass another --out folder.",
        ) from None
    try:
        yield folder
    finally:
        lock.release()


def append(folder: Path, record: dict[str, Any]) -> None:
    """One record, flushed before the next question (so a crash loses nothing scored)."""
    with (folder / RESULTS).open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_records(folder: Path) -> dict[int, dict[str, Any]]:
    """The records of results.jsonl by index (the last one wins; cut lines are ignored)."""
    records: dict[int, dict[str, Any]] = {}
    path = folder / RESULTS
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            records[int(record["index"])] = record
        except (ValueError, KeyError, TypeError):
            continue
    return records


def summarize(
    folder: Path,
    dataset: Dataset,
    n_selected: int,
    records: dict[int, dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    """summary.json over the records of the selected questions found so far (plus extra)."""
    scored = [r for r in records.values() if r["correct"] is not None]
    correct = sum(1 for r in scored if r["correct"])
    errors: dict[str, int] = {}
    for record in records.values():
        if record.get("error"):
            code = record["error"]["code"]
            errors[code] = errors.get(code, 0) + 1
    summary: dict[str, Any] = {
        "dataset": str(dataset.path),
        "format": dataset.format,
        "n_questions": n_selected,
        "n_scored": len(scored),
        "n_correct": correct,
        "n_skipped": errors.get(DATABASE_MISSING, 0),
        "n_dataset_errors": errors.get(DATASET_ERROR, 0),
        "n_pending": n_selected - len(records),
        "execution_accuracy": correct / len(scored) if scored else 0.0,
        "valid_sql_rate": rate(scored, "valid_sql"),
        "exact_set_match": rate(scored, "exact_match"),
        "errors_by_code": dict(sorted(errors.items())),
        "missing_databases": dataset.missing_dbs,
    }
    if any(r.get("difficulty") for r in scored):
        summary["by_difficulty"] = by_difficulty(
            (r.get("difficulty"), bool(r["correct"])) for r in scored
        )
    if any(r.get("tags") for r in scored):
        summary["by_tag"] = by_tag(scored)
    if any("latency_ms" in r for r in scored):
        summary["agent"] = agent_figures([r for r in records.values() if "latency_ms" in r])
    summary.update(extra)
    (folder / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
