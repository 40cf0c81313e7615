"""`sqlsage eval run`: score a dataset's questions, in parallel, resumably.

With `--predictions FILE` no model runs: FILE holds one SQL per question in dataset order (the
official `pred.sql` layout: a line for every question, skipped ones included; anything after a
TAB is ignored), or BIRD's JSON `{"0": "SQL\\t----- bird -----\\tdb_id", ...}`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.eval_datasets import Dataset, EvalItem, load_dataset
from evals.scoring import Scoring, append, done_indices, output_dir, summarize
from evals.spider_exec import prediction_sql
from tools.errors import INVALID_ARGUMENT, SqlsageError

Progress = Callable[[int, int, int, int], None]  # done, total, correct, scored


@dataclass
class EvalOptions:
    """What `sqlsage eval run` was asked for."""

    dataset: Path
    format: str
    out: Path
    predictions: Path | None = None
    db_dir: Path | None = None
    limit: int | None = None
    ids: list[str] = field(default_factory=list)
    workers: int = 1
    timeout_s: float = 30.0
    keep_distinct: bool = False


def select(dataset: Dataset, limit: int | None, ids: list[str]) -> list[EvalItem]:
    """The questions to run: those named by --ids (question id or index), then --limit."""
    items = dataset.items
    if ids:
        wanted = set(ids)
        items = [i for i in items if i.question_id in wanted or str(i.index) in wanted]
        found = {i.question_id for i in items} | {str(i.index) for i in items}
        unknown = sorted(wanted - found)
        if unknown:
            raise SqlsageError(
                INVALID_ARGUMENT,
                f"--ids names questions the dataset does not have: {', '.join(unknown[:10])}.",
                hint="Use question ids from the dataset, or 0-based positions.",
            )
    if limit is not None:
        if limit < 1:
            raise SqlsageError(INVALID_ARGUMENT, f"--limit is {limit}; it must be at least 1.")
        items = items[:limit]
    return items


def read_predictions(path: Path, dataset: Dataset) -> list[str]:
    """One predicted SQL per dataset question, in dataset order."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Cannot read predictions file '{path}': {reason}.",
            hint="Pass a text file with one SQL per line (or BIRD's predictions JSON).",
        ) from None
    if path.suffix == ".json":
        return _bird_json_predictions(path, text, len(dataset.items))
    lines = text.splitlines()
    if len(lines) != len(dataset.items):
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Predictions file '{path}' has {len(lines)} lines; the dataset has "
            f"{len(dataset.items)} questions.",
            hint="Write one SQL per question in dataset order, a line for skipped ones too "
            "(any SQL, never a blank line).",
        )
    blank = [n for n, line in enumerate(lines, 1) if not line.strip()]
    if blank:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Predictions file '{path}' has a blank line at line {blank[0]}.",
            hint="Every question needs a line of SQL (write e.g. SELECT 1 for one you skip).",
        )
    return [prediction_sql(line) for line in lines]


def _bird_json_predictions(path: Path, text: str, count: int) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SqlsageError(
            INVALID_ARGUMENT, f"Predictions file '{path}': invalid JSON ({error.msg})."
        ) from None
    if not isinstance(data, dict) or sorted(data, key=int) != [str(i) for i in range(count)]:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f'Predictions file \'{path}\' is not BIRD\'s {{"0": "SQL\\t----- bird -----\\tdb", '
            f"...}} with keys 0..{count - 1}.",
            hint="Or write one SQL per line in a .sql file.",
        )
    return [str(data[str(i)]).split("\t----- bird -----")[0].strip() for i in range(count)]


def score_predictions(options: EvalOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Score a predictions file; results.jsonl and summary.json in options.out."""
    dataset = load_dataset(options.dataset, options.format, db_dir=options.db_dir)
    if options.predictions is None:
        raise SqlsageError(INVALID_ARGUMENT, "No predictions file given.")
    if not 1 <= options.workers <= 64:
        raise SqlsageError(INVALID_ARGUMENT, f"--workers is {options.workers}; use 1 to 64.")
    predictions = read_predictions(options.predictions, dataset)
    selected = select(dataset, options.limit, options.ids)
    scoring = Scoring(dataset.format, options.timeout_s, options.keep_distinct)
    started = time.perf_counter()
    with output_dir(options.out) as folder:
        done = done_indices(folder)
        todo = [i for i in selected if i.index not in done]
        counts = [len(selected) - len(todo), 0, 0]  # done, correct, scored (this run)
        with ThreadPoolExecutor(max_workers=options.workers) as pool:
            pending: set[Future[dict[str, Any]]] = set()
            queue = iter(todo)
            for item in itertools.islice(queue, options.workers * 4):  # a few ahead per worker
                pending.add(pool.submit(scoring.score, item, predictions[item.index]))
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    record = future.result()
                    append(folder, record)
                    counts[0] += 1
                    if record["correct"] is not None:
                        counts[2] += 1
                        counts[1] += int(record["correct"])
                    if progress is not None:
                        progress(counts[0], len(selected), counts[1], counts[2])
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(scoring.score, nxt, predictions[nxt.index]))
        return summarize(
            folder,
            dataset,
            {i.index for i in selected},
            elapsed_s=round(time.perf_counter() - started, 2),
            workers=options.workers,
        )
