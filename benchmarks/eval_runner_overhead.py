"""The eval runner's own overhead per question (`sqlsage eval run --model`), with an instant
scripted model: per question it replies run_sql(<the question's gold SQL>) and then a short
answer, so every question is right and no model time is spent.

- bare: the same turns through TurnRunner.stream alone (same graph, model, database), timed
  per question: what the agent costs;
- harness: run_agent over the same questions (1 worker): the agent plus what the harness adds
  (fresh session and result store per question, reading the turn's events, scoring gold and
  prediction on a read-only SQLite connection, the sqlglot exact-set match, appending the
  record, the summary and report).
Overhead per question = harness wall / n - bare wall / n. The sample question set (84) three
times over (252 questions), 3 rounds, median.

    .venv/bin/python benchmarks/eval_runner_overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from _common import emit_result
from _scripted import ScriptedChatModel, position, reply
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import Field

from agents.context import Services
from evals.datasets import SAMPLE_BUILTIN, load_dataset
from evals.runner import EvalOptions, run_agent
from graphs.text_to_sql import build_graph
from graphs.turns import Turn, TurnRunner
from memory.page_cache import InMemoryResults
from server.resources import build_resources
from server.settings import Settings

REPEAT = 3


class GoldModel(ScriptedChatModel):
    """Runs the question's gold SQL, then answers without figures (no number check)."""

    gold: dict[str, str] = Field(default_factory=dict)

    def decide(self, messages: list[BaseMessage]) -> AIMessage:
        """run_sql(gold) first, the answer second."""
        started = time.perf_counter()
        question = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
        if position(messages) == 0:
            message = reply("", [("run_sql", {"sql": self.gold[str(question.content)]})])
        else:
            message = reply("Here is what the data says.")
        self.clock.seconds += time.perf_counter() - started
        return message


def write_dataset(path: Path) -> dict[str, str]:
    """The sample set REPEAT times (unique ids); {question: gold}."""
    rows = [json.loads(x) for x in SAMPLE_BUILTIN.read_text().splitlines() if x.strip()]
    with path.open("w") as out:
        for n in range(REPEAT):
            for row in rows:
                out.write(json.dumps({**row, "id": f"{row['id']}-{n}"}) + "\n")
    return {row["question"]: row["gold_sql"] for row in rows}


async def bare(model: GoldModel, settings: Settings, dataset: Path) -> float:
    """Seconds for the questions' turns through TurnRunner alone."""
    resources = build_resources(settings)
    resources.index.ensure(resources.database("sample"))
    items = load_dataset(dataset, "jsonl").items
    results = InMemoryResults()
    runner = TurnRunner(
        services=Services(resources=resources, results=results),
        graph=build_graph(),
        model_factory=lambda spec: model,
    )
    started = time.perf_counter()
    for item in items:  # as the harness runs them: one runner, each session forgotten after
        turn = Turn(item.question, session_id=f"bare-{item.index}", db="sample", model="scripted")
        async for _ in runner.stream(turn):
            pass
        results.forget(f"bare-{item.index}")
    elapsed = time.perf_counter() - started
    resources.close()
    return elapsed


def main() -> None:
    """Interleave bare and harness rounds; print per-question figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sqlsage-evalrun-"))
    dataset = work / "set.jsonl"
    model = GoldModel(steps=[])
    model.gold = write_dataset(dataset)
    n = len(load_dataset(dataset, "jsonl").items)
    settings = Settings(data_dir=work / "state")
    bare_s: list[float] = []
    harness_s: list[float] = []
    score_ms: list[float] = []
    for round_ in range(args.rounds):
        bare_s.append(asyncio.run(bare(model, settings, dataset)))
        out = work / f"run{round_}"
        options = EvalOptions(
            dataset, "jsonl", out, model="scripted", model_factory=lambda spec: model
        )
        summary = asyncio.run(run_agent(options, base=settings))
        assert summary["n_correct"] == summary["n_scored"] == n, summary
        harness_s.append(summary["elapsed_s"])
        records = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
        score_ms.append(statistics.mean(r["score_ms"] for r in records))
        print(
            f"round {round_ + 1}: bare {1000 * bare_s[-1] / n:.2f} ms/question, harness "
            f"{1000 * harness_s[-1] / n:.2f} ms/question (scoring {score_ms[-1]:.2f} ms)"
        )
    bare_q = 1000 * statistics.median(bare_s) / n
    harness_q = 1000 * statistics.median(harness_s) / n
    print(
        f"\n{n} questions, 1 worker, median of {args.rounds}: agent alone {bare_q:.2f} ms, "
        f"through the harness {harness_q:.2f} ms -> runner overhead {harness_q - bare_q:.2f} ms "
        f"per question, of which scoring (gold + prediction on SQLite, exact-set match) "
        f"{statistics.median(score_ms):.2f} ms; {n / statistics.median(harness_s):.0f} "
        "questions/s through the harness"
    )
    emit_result(
        {
            "benchmark": "eval_runner_overhead",
            "questions": n,
            "agent_ms_per_question": round(bare_q, 2),
            "harness_ms_per_question": round(harness_q, 2),
            "overhead_ms_per_question": round(harness_q - bare_q, 2),
            "scoring_ms_per_question": round(statistics.median(score_ms), 2),
        }
    )


if __name__ == "__main__":
    main()
