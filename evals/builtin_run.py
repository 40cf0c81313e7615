"""Run questions through the full graph (builtin model, no checkpointer) and score them by
execution match. The eval-harness issue generalizes this; here it measures the builtin model."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.context import Services
from evals.datasets import EvalQuestion
from evals.metrics import MatchResult, execution_match
from graphs.text_to_sql import build_graph
from graphs.turns import Turn, TurnRunner, collect
from memory.page_cache import InMemoryResults


@dataclass(frozen=True)
class Scored:
    """One question's outcome."""

    question: EvalQuestion
    predicted: str | None
    status: str
    match: MatchResult
    elapsed_ms: float


def _strip_limit(sql: str | None, cap: int) -> str | None:
    """The validator's injected row cap (the database's max_rows) is not part of the
    prediction."""
    if sql is None:
        return None
    return re.sub(rf"\s+LIMIT {cap}$", "", sql)


async def run_questions(
    questions: list[EvalQuestion], resources: Any, db_path_for: Any, model: str = "builtin"
) -> list[Scored]:
    """Ask each question on its database (db name = question.db) and score it."""
    runner = TurnRunner(
        services=Services(resources=resources, results=InMemoryResults()), graph=build_graph()
    )
    scored: list[Scored] = []
    for item in questions:
        started = time.perf_counter()
        events = [e async for e in runner.stream(Turn(item.question, db=item.db, model=model))]
        out = collect(events)
        predicted = _strip_limit(out["sql"], resources.database(item.db).config.max_rows)
        path: Path = db_path_for(item.db)
        match = (
            execution_match(path, item.sql, predicted)
            if predicted
            else MatchResult(False, f"no SQL ({out['status']})")
        )
        scored.append(
            Scored(item, predicted, out["status"], match, (time.perf_counter() - started) * 1000)
        )
    return scored


def run(questions: list[EvalQuestion], resources: Any, db_path_for: Any) -> list[Scored]:
    """run_questions, from synchronous code."""
    return asyncio.run(run_questions(questions, resources, db_path_for))
