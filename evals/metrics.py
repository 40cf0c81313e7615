"""The figures of a run beyond execution accuracy, from its results.jsonl records: rates,
breakdowns per difficulty and tag, and what the agent's questions cost (latency percentiles,
model and tool calls, tokens, USD).

Execution accuracy itself is each benchmark's own: evals/spider_exec.py (Spider's test-suite
evaluator) and evals/bird_exec.py (BIRD's evaluation_ex.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DIFFICULTIES = ("simple", "moderate", "challenging")


def accuracy_table(verdicts: Iterable[tuple[str, bool]]) -> dict[str, dict[str, float]]:
    """{key: {n, correct, accuracy}} from (key, correct) pairs, keys sorted."""
    counts: dict[str, list[int]] = {}
    for key, correct in verdicts:
        row = counts.setdefault(key, [0, 0])
        row[0] += 1
        row[1] += int(correct)
    return {
        key: {"n": n, "correct": ok, "accuracy": ok / n} for key, (n, ok) in sorted(counts.items())
    }


def by_difficulty(verdicts: Iterable[tuple[str | None, bool]]) -> dict[str, dict[str, float]]:
    """Accuracy per difficulty (and 'total'), as BIRD's official report tables it: its three
    levels first, any others after, then 'unknown' (no difficulty) and 'total'."""
    pairs = [(difficulty or "unknown", correct) for difficulty, correct in verdicts]
    table = accuracy_table(pairs + [("total", correct) for _, correct in pairs])
    tail = ["unknown", "total"]
    order = [*DIFFICULTIES, *sorted(set(table) - {*DIFFICULTIES, *tail}), *tail]
    return {key: table[key] for key in order if key in table}


def rate(records: list[dict[str, Any]], key: str) -> float:
    """Share of records whose `key` is true (a null counts as not)."""
    return sum(1 for r in records if r.get(key)) / len(records) if records else 0.0


def by_tag(scored: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Accuracy per tag (a question counts under each of its tags; 'untagged' if none)."""
    return accuracy_table(
        (tag, bool(r["correct"])) for r in scored for tag in r.get("tags") or ["untagged"]
    )


def agent_figures(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency percentiles, model and tool calls, tokens and cost of the agent's questions."""
    if not records:
        return {}
    latencies = sorted(float(r["latency_ms"]) for r in records)
    n = len(records)

    def total(key: str) -> float:
        return sum(float(r.get(key) or 0) for r in records)

    cost = total("cost_usd")
    return {
        "n": n,
        "latency_ms_p50": round(percentile(latencies, 50), 1),
        "latency_ms_p95": round(percentile(latencies, 95), 1),
        "model_calls_per_question": round(total("model_calls") / n, 2),
        "tool_calls_per_question": round(total("tool_calls") / n, 2),
        "input_tokens": int(total("input_tokens")),
        "output_tokens": int(total("output_tokens")),
        "tokens_per_question": round((total("input_tokens") + total("output_tokens")) / n, 1),
        "cost_usd": round(cost, 6),
        "cost_usd_per_question": round(cost / n, 6),
    }


def percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile of sorted values (linear interpolation, as numpy's default)."""
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
