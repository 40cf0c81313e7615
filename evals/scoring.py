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
from evals.eval_datasets import Dataset, EvalItem
from evals.spider_exec import ExecVerdict, GoldFailed
from tools.errors import INVALID_ARGUMENT, SqlsageError

RESULTS = "results.jsonl"
SUMMARY = "summary.json"


@dataclass(frozen=True)
class Scoring:
    """How predictions are judged: the dataset's official semantics and their options."""

    format: str
    timeout_s: float = 30.0
    keep_distinct: bool = False

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
        )

    def score(self, item: EvalItem, predicted: str | None, **extra: Any) -> dict[str, Any]:
        """One results.jsonl record: correct true/false, or null when the question is skipped
        (database missing) or its gold SQL fails (a dataset error)."""
        record: dict[str, Any] = {
            "index": item.index,
            "question_id": item.question_id,
            "db": item.db,
            "difficulty": item.difficulty,
            "tags": list(item.tags),
            "pred_sql": predicted,
            "correct": None,
            "error": None,
            **extra,
        }
        if item.db_path is None:
            record["error"] = {"code": "database_missing", "message": f"No database '{item.db}'."}
            return record
        if not predicted or not predicted.strip():
            record.update(correct=False, error={"code": "no_sql", "message": "No SQL predicted."})
            return record
        started = time.perf_counter()
        try:
            verdict = self.verdict(item, predicted)
        except GoldFailed as failure:
            record["error"] = {"code": "dataset_error", "message": f"The gold SQL fails: {failure}"}
            return record
        record["score_ms"] = round((time.perf_counter() - started) * 1000, 2)
        record["correct"] = verdict.correct
        if not verdict.correct:
            record["error"] = {"code": "wrong_result", "message": verdict.reason}
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


def done_indices(folder: Path) -> set[int]:
    """Questions already scored in this folder (a resumed run skips them)."""
    path = folder / RESULTS
    if not path.is_file():
        return set()
    done = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            done.add(int(json.loads(line)["index"]))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash: that question is scored again
    return done


def append(folder: Path, record: dict[str, Any]) -> None:
    """One record, flushed before the next question (so a crash loses nothing scored)."""
    with (folder / RESULTS).open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")


def summarize(folder: Path, dataset: Dataset, selected: set[int], **extra: Any) -> dict[str, Any]:
    """summary.json over the selected questions' records in results.jsonl (plus extra)."""
    records: dict[int, dict[str, Any]] = {}
    for line in (folder / RESULTS).read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("index") in selected:
            records[record["index"]] = record
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
        "n_questions": len(selected),
        "n_scored": len(scored),
        "n_correct": correct,
        "n_skipped": sum(
            1 for r in records.values() if r["error"] and r["error"]["code"] == "database_missing"
        ),
        "n_dataset_errors": errors.get("dataset_error", 0),
        "n_pending": len(selected) - len(records),
        "execution_accuracy": correct / len(scored) if scored else 0.0,
        "errors_by_code": dict(sorted(errors.items())),
        "missing_databases": dataset.missing_dbs,
    }
    if dataset.format == "bird":
        summary["by_difficulty"] = bird_exec.by_difficulty(
            (r["difficulty"], bool(r["correct"])) for r in scored
        )
    summary.update(extra)
    (folder / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
