"""`sqlsage eval run`: score a dataset's questions, in parallel, resumably.

With `--predictions FILE` no model runs: FILE holds one SQL per question in dataset order (the
official `pred.sql` layout: a line for every question, skipped ones included; anything after a
TAB is ignored), or BIRD's JSON `{"0": "SQL\\t----- bird -----\\tdb_id", ...}`.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.datasets import Dataset, EvalItem, load_dataset
from evals.report import REPORT, write_report
from evals.scoring import Scoring, append, output_dir, read_records, summarize
from evals.spider_exec import prediction_sql
from server.settings import Settings, load_settings
from tools.errors import INTERNAL_ERROR, INVALID_ARGUMENT, SqlsageError

if TYPE_CHECKING:
    from evals.agent_predict import AgentPredictor

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
    timeout_s: float | None = None  # per query; None: the official one (Spider 60 s, BIRD 30 s)
    keep_distinct: bool = False
    model: str | None = None
    evidence: bool = True
    turn_timeout_s: float = 300.0
    config: Path | None = None
    model_factory: Callable[[str], Any] | None = None  # tests and benchmarks: a scripted model


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


def run_eval(options: EvalOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Score predictions (--predictions) or run the agent (--model) over the dataset."""
    if (options.predictions is None) == (options.model is None):
        raise SqlsageError(
            INVALID_ARGUMENT,
            "Pass exactly one of --predictions FILE and --model M."
            if options.predictions is None
            else "--predictions and --model were both given.",
            hint="--predictions scores a file of SQL without a model; --model runs the agent on "
            "every question (e.g. --model builtin).",
        )
    if options.predictions is not None:
        return score_predictions(options, progress)
    return asyncio.run(run_agent(options, progress))


def check_options(options: EvalOptions) -> None:
    """Refuse out-of-range numbers before anything is read or written."""
    if not 1 <= options.workers <= 64:
        raise SqlsageError(INVALID_ARGUMENT, f"--workers is {options.workers}; use 1 to 64.")
    for name, value in (
        ("--timeout", options.timeout_s),
        ("--turn-timeout", options.turn_timeout_s),
    ):
        if value is not None and not 0 < value <= 3600:
            raise SqlsageError(
                INVALID_ARGUMENT,
                f"{name} is {value:g} seconds.",
                hint="Use a number of seconds above 0 and at most 3600.",
            )


def score_predictions(options: EvalOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Score a predictions file; results.jsonl and summary.json in options.out."""
    check_options(options)
    dataset = load_dataset(options.dataset, options.format, db_dir=options.db_dir)
    if options.predictions is None:
        raise SqlsageError(INVALID_ARGUMENT, "No predictions file given.")
    predictions = read_predictions(options.predictions, dataset)
    selected = select(dataset, options.limit, options.ids)
    scoring = Scoring.for_format(dataset.format, options.timeout_s, options.keep_distinct)
    pool = ThreadPoolExecutor(max_workers=options.workers)

    async def work(item: EvalItem) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, scoring.score, item, predictions[item.index])

    with pool, output_dir(options.out) as folder:
        return asyncio.run(_run(folder, options, dataset, selected, scoring, work, progress))


async def run_agent(
    options: EvalOptions, progress: Progress | None = None, *, base: Settings | None = None
) -> dict[str, Any]:
    """Run the agent on every selected question (a fresh session each) and score its SQL.
    Everything that can be refused (dataset, options, model spec, a busy output folder) is
    checked before the first question runs or anything is written to the folder."""
    from evals.agent_predict import AgentPredictor

    assert options.model is not None
    check_options(options)
    settings = base if base is not None else load_settings(options.config)
    names = _configured_sqlite(settings) if options.format == "jsonl" else nullcontext(None)
    with names as resolve:
        dataset = load_dataset(
            options.dataset, options.format, db_dir=options.db_dir, resolve=resolve
        )
    selected = select(dataset, options.limit, options.ids)
    scoring = Scoring.for_format(dataset.format, options.timeout_s, options.keep_distinct)
    with tempfile.TemporaryDirectory(prefix="sqlsage-eval-") as work:
        predictor = AgentPredictor.for_dataset(
            dataset,
            Path(work),  # BIRD's descriptions as comments files, for this run only
            settings,
            options.model,
            turn_timeout_s=options.turn_timeout_s,
            evidence=options.evidence,
            model_factory=options.model_factory,
        )
        try:
            predictor.check_model()
            with output_dir(options.out) as folder:
                return await _run_agent(
                    folder, options, dataset, selected, scoring, predictor, progress
                )
        finally:
            predictor.close()


async def _run_agent(
    folder: Path,
    options: EvalOptions,
    dataset: Dataset,
    selected: list[EvalItem],
    scoring: Scoring,
    predictor: AgentPredictor,
    progress: Progress | None,
) -> dict[str, Any]:
    from evals.agent_predict import AgentPrediction, agent_db_name

    pool = ThreadPoolExecutor(max_workers=options.workers)

    async def work(item: EvalItem) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        if item.db_path is None:
            return await loop.run_in_executor(pool, scoring.score, item, None)
        try:
            prediction = await predictor.predict(item, agent_db_name(dataset, item))
        except Exception as exc:  # a bug, not the model: record it and go on
            error = {"code": INTERNAL_ERROR, "message": f"{type(exc).__name__}: {exc}"[:500]}
            prediction = AgentPrediction(None, "failed", error, 0.0)
        extra = prediction.fields()
        if prediction.sql is None:
            extra["error"] = prediction.error
        elif prediction.error is not None:
            extra["agent_error"] = prediction.error
        return await loop.run_in_executor(
            pool, lambda: scoring.score(item, prediction.sql, **extra)
        )

    with pool:
        wanted = [i for i in selected if i.db_path is not None]
        await predictor.warm_up(sorted({agent_db_name(dataset, i) for i in wanted}))
        return await _run(folder, options, dataset, selected, scoring, work, progress)


async def _run(
    folder: Path,
    options: EvalOptions,
    dataset: Dataset,
    selected: list[EvalItem],
    scoring: Scoring,
    work: Callable[[EvalItem], Awaitable[dict[str, Any]]],
    progress: Progress | None,
) -> dict[str, Any]:
    """Work through the selected questions not yet in the folder's results, `workers` at once,
    appending each record as soon as it is known; then summary.json and report.md."""
    started = time.perf_counter()
    wanted = {i.index for i in selected}
    records = {i: r for i, r in read_records(folder).items() if i in wanted}
    todo = iter([i for i in selected if i.index not in records])
    counts = {"done": 0, "scored": 0, "correct": 0}

    def count(record: dict[str, Any]) -> None:
        counts["done"] += 1
        if record["correct"] is not None:
            counts["scored"] += 1
            counts["correct"] += int(bool(record["correct"]))

    for record in records.values():
        count(record)

    async def worker() -> None:
        for item in todo:  # one iterator shared by the workers (one thread: no race)
            record = await work(item)
            append(folder, record)
            records[item.index] = record
            count(record)
            if progress is not None:
                progress(counts["done"], len(selected), counts["correct"], counts["scored"])

    await asyncio.gather(*(worker() for _ in range(options.workers)))
    extra: dict[str, Any] = {
        "elapsed_s": round(time.perf_counter() - started, 2),
        "workers": options.workers,
        "timeout_s": scoring.timeout_s,
        "keep_distinct": scoring.keep_distinct,
        "report": str(folder / REPORT),
    }
    if options.model is not None:
        extra["model"] = options.model
        if any(item.evidence for item in selected):  # only datasets that have evidence
            extra["evidence"] = options.evidence
    summary = summarize(folder, dataset, len(selected), records, **extra)
    write_report(folder, summary, records)
    return summary


@contextmanager
def _configured_sqlite(settings: Settings) -> Iterator[Callable[[str], Path | str | None]]:
    """For JSONL questions: a configured database's SQLite file (the bundled sample too),
    while the dataset loads."""
    from server.resources import build_resources

    resources = build_resources(settings)

    def resolve(name: str) -> Path | str | None:
        if name not in resources.databases.names():
            return None
        database = resources.database(name)
        if database.driver.kind != "sqlite" or not database.url.database:
            return f"Database '{name}' is {database.dialect}; scoring runs on SQLite files."
        return Path(database.url.database)

    try:
        yield resolve
    finally:
        resources.close()
