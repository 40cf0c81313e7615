"""The agent's prediction for one eval question: the full graph in a fresh session, and what the
turn cost (latency, model calls, tool calls, tokens, USD).

The prediction is the SQL of the turn's last successful run_sql call as the model wrote it (the
validator's row cap is not part of it); a turn that validated SQL but never ran it is scored on
that SQL; a turn with no SQL at all is wrong with the turn's error (`no_sql` when it had none).
A model that fails, hangs past the turn timeout or raises is recorded the same way: the run goes
on with the next question.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.context import Services
from evals.bird_descriptions import write_comments_file
from evals.datasets import Dataset, EvalItem
from graphs.events import Event
from graphs.turns import Turn, TurnRunner
from memory.page_cache import InMemoryResults
from server.resources import Resources, build_resources
from server.settings import DatabaseSettings, Settings
from tools.errors import TIMEOUT, SqlsageError
from tools.urls import looks_like_url

TOOLS = ("schema_lookup", "semantic_search", "validate_sql", "run_sql", "build_chart")


@dataclass
class AgentPrediction:
    """What the agent did with one question."""

    sql: str | None
    status: str
    error: dict[str, Any] | None
    latency_ms: float
    model_calls: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    answer: str = ""

    def fields(self) -> dict[str, Any]:
        """The results.jsonl fields of this prediction (pred_sql and error go elsewhere)."""
        return {
            "status": self.status,
            "latency_ms": round(self.latency_ms, 1),
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "answer": self.answer[:500],
        }


def prediction_from(events: list[Event], latency_ms: float) -> AgentPrediction:
    """Read a turn's events: the SQL it ran, its outcome and what it cost."""
    ran: str | None = None
    validated: str | None = None
    pending: str | None = None  # the SQL of the run_sql step in progress
    tool_calls = 0
    error: dict[str, Any] | None = None
    done: dict[str, Any] = {}
    for event in events:
        data = event.data
        if event.event == "step":
            if data.get("name") == "run_sql" and data.get("status") == "start":
                pending = str((data.get("args") or {}).get("sql") or "") or None
            elif data.get("name") in TOOLS and data.get("status") == "end":
                tool_calls += 1
        elif event.event == "table":
            ran = pending or ran
        elif event.event == "sql" and data.get("valid"):
            validated = data.get("sql")
        elif event.event == "error":
            error = {"code": data.get("code", "error"), "message": data.get("message", "")}
        elif event.event == "done":
            done = data
    usage = done.get("usage") or {}
    return AgentPrediction(
        sql=ran or validated,
        status=done.get("status", "failed"),
        error=error,
        latency_ms=latency_ms,
        model_calls=int(usage.get("model_calls", 0) or 0),
        tool_calls=tool_calls,
        input_tokens=int(usage.get("input_tokens", 0) or 0),
        output_tokens=int(usage.get("output_tokens", 0) or 0),
        cost_usd=float(usage.get("cost_usd", 0.0) or 0.0),
        answer=str(done.get("answer") or ""),
    )


def question_text(item: EvalItem, *, evidence: bool) -> str:
    """The question as the agent gets it: BIRD's protocol appends the evidence."""
    if evidence and item.evidence:
        return f"{item.question}\nHint: {item.evidence}"
    return item.question


def eval_settings(dataset: Dataset, work: Path, base: Settings) -> Settings:
    """The run's settings: the base (model, keys, configured databases, data directory with
    its knowledge index, reused across runs) plus every SQLite file the dataset's questions
    name, under the name agent_db_name gives it, with BIRD's descriptions as column comments
    (written into `work`). A Spider or BIRD database replaces a configured one of the same name:
    the agent must query the file the gold SQL is scored on."""
    databases = dict(base.databases)
    added: set[str] = set()
    for item in dataset.items:
        if item.db_path is None:
            continue
        if dataset.format == "jsonl" and not looks_like_url(item.db):
            continue  # a configured database, used as configured
        name = agent_db_name(dataset, item)
        if name in added:
            continue
        added.add(name)
        comments = None
        if dataset.format == "bird":
            target = work / "comments" / f"{name}.comments.json"
            written = write_comments_file(item.db_path.parent, target)
            comments = str(written) if written else None
        databases[name] = DatabaseSettings(
            url=f"sqlite:///{item.db_path.resolve()}", comments_file=comments
        )
    return base.model_copy(update={"databases": databases})


def agent_db_name(dataset: Dataset, item: EvalItem) -> str:
    """The database name the agent is given: Spider/BIRD's db_id, a JSONL question's
    configured name, or `eval_<file stem>_<hash>` for a JSONL question that names a SQLite URL."""
    if dataset.format == "jsonl" and looks_like_url(item.db):
        stem = item.db_path.stem if item.db_path is not None else "db"
        digest = hashlib.sha1(item.db.encode()).hexdigest()[:6]  # two files, one stem
        return f"eval_{stem}_{digest}"
    return item.db


@dataclass
class AgentPredictor:
    """Runs questions through the graph, one fresh session each (no checkpointer: a session of
    one turn needs no memory), sharing one model instance across questions."""

    resources: Resources
    model: str
    turn_timeout_s: float = 300.0
    evidence: bool = True
    model_factory: Callable[[str], Any] | None = None
    _results: InMemoryResults = field(default_factory=InMemoryResults)
    _runner: TurnRunner | None = None

    @classmethod
    def for_dataset(
        cls, dataset: Dataset, work: Path, base: Settings, model: str, **kwargs: Any
    ) -> AgentPredictor:
        """A predictor whose resources hold the dataset's databases."""
        return cls(build_resources(eval_settings(dataset, work, base)), model, **kwargs)

    def check_model(self) -> None:
        """Build the model once before any question: a bad model spec or a missing key is one
        clear error, not a thousand failed questions."""
        self.runner.chat_model(self.model)

    async def warm_up(self, databases: list[str]) -> None:
        """Open the knowledge index and build each database's entries before the first
        question, so no question's latency (or turn timeout) pays for an index build."""

        def build() -> None:
            for name in databases:
                self.resources.index.ensure(self.resources.database(name))

        await asyncio.to_thread(build)

    @property
    def runner(self) -> TurnRunner:
        """The graph, the model and the result store every question shares (built once)."""
        if self._runner is None:
            from graphs.text_to_sql import build_graph

            self._runner = TurnRunner(
                services=Services(resources=self.resources, results=self._results),
                graph=build_graph(),
                model_factory=self.model_factory,
            )
        return self._runner

    async def predict(self, item: EvalItem, db: str) -> AgentPrediction:
        """The agent's prediction for one question (never raises for a model's failure)."""
        runner = self.runner
        session_id = f"eval-{item.index}-{uuid.uuid4().hex[:8]}"
        turn = Turn(
            question_text(item, evidence=self.evidence),
            session_id=session_id,
            db=db,
            model=self.model,
        )
        events: list[Event] = []
        started = time.perf_counter()

        async def consume() -> None:
            async for event in runner.stream(turn):
                events.append(event)

        try:
            await asyncio.wait_for(consume(), self.turn_timeout_s)
        except TimeoutError:
            elapsed = (time.perf_counter() - started) * 1000
            partial = prediction_from(events, elapsed)
            partial.status = "failed"
            partial.error = {
                "code": TIMEOUT,
                "message": f"The turn ran past {self.turn_timeout_s:g} s and was stopped.",
            }
            return partial
        except SqlsageError as error:  # refused before the turn started (e.g. too long)
            elapsed = (time.perf_counter() - started) * 1000
            return AgentPrediction(None, "failed", _short(error.to_dict()), elapsed)
        finally:
            self._results.forget(session_id)  # a finished question's pages are not kept
        return prediction_from(events, (time.perf_counter() - started) * 1000)

    def close(self) -> None:
        """Release the databases' connections."""
        self.resources.close()


def _short(error: dict[str, Any]) -> dict[str, Any]:
    return {"code": error.get("code", "error"), "message": error.get("message", "")}
