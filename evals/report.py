"""A run's report.md (its figures, tables per breakdown, the 20 worst failures) and the
comparison of two runs (`sqlsage eval compare A B`): questions that flipped, metric deltas.

"Worst" failures come first by how far from right they were: no SQL at all (the model failed
or gave up), then SQL that did not run (invalid or timed out), then SQL that ran and returned
the wrong rows; within a kind, the slowest first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.scoring import RESULTS, SUMMARY, read_records
from tools.errors import INVALID_ARGUMENT, SqlsageError

REPORT = "report.md"
WORST = 20
_SEVERITY = {"no_sql": 3, "timeout": 2, "invalid_sql": 2, "wrong_result": 1}

# The figures `compare` shows deltas of, with how to print them.
METRICS: tuple[tuple[str, str], ...] = (
    ("execution_accuracy", "pct"),
    ("valid_sql_rate", "pct"),
    ("exact_set_match", "pct"),
    ("n_scored", "int"),
    ("n_correct", "int"),
    ("n_skipped", "int"),
    ("n_dataset_errors", "int"),
    ("agent.latency_ms_p50", "ms"),
    ("agent.latency_ms_p95", "ms"),
    ("agent.model_calls_per_question", "num"),
    ("agent.tool_calls_per_question", "num"),
    ("agent.tokens_per_question", "num"),
    ("agent.cost_usd", "usd"),
    ("agent.cost_usd_per_question", "usd"),
)


def severity(record: dict[str, Any]) -> int:
    """How far from right a wrong record is (higher: worse)."""
    code = (record.get("error") or {}).get("code", "wrong_result")
    return _SEVERITY.get(code, 3)  # a model or agent error code: no usable SQL


def worst_failures(records: list[dict[str, Any]], n: int = WORST) -> list[dict[str, Any]]:
    """The n worst wrong answers (skipped questions and dataset errors are not failures)."""
    wrong = [r for r in records if r.get("correct") is False]
    wrong.sort(key=lambda r: (-severity(r), -float(r.get("latency_ms") or 0), r["index"]))
    return wrong[:n]


def render_report(summary: dict[str, Any], records: dict[int, dict[str, Any]]) -> str:
    """report.md's text."""
    lines = [f"# Evaluation: {Path(summary['dataset']).name} ({summary['format']})", ""]
    if summary.get("model"):
        given = summary.get("evidence")
        evidence = "" if given is None else " (with evidence)" if given else " (without evidence)"
        lines.append(f"Model `{summary['model']}`{evidence}, {summary['workers']} worker(s).")
    else:
        lines.append("Scored from a predictions file (no model ran).")
    lines += [
        "",
        "| figure | value |",
        "|---|---|",
        f"| execution accuracy | **{summary['execution_accuracy']:.2%}** "
        f"({summary['n_correct']} / {summary['n_scored']}) |",
        f"| valid SQL | {summary.get('valid_sql_rate', 0.0):.2%} |",
        f"| exact-set match (sqlglot, informative) | {summary.get('exact_set_match', 0.0):.2%} |",
        f"| skipped (database missing) | {summary['n_skipped']} |",
        f"| dataset errors (gold SQL fails) | {summary['n_dataset_errors']} |",
        f"| not yet run | {summary['n_pending']} |",
        f"| elapsed | {summary.get('elapsed_s', 0):.1f} s |",
    ]
    agent = summary.get("agent") or {}
    if agent:
        lines += [
            f"| latency p50 / p95 per question | {agent['latency_ms_p50']:.0f} / "
            f"{agent['latency_ms_p95']:.0f} ms |",
            f"| model calls / tool calls per question | {agent['model_calls_per_question']} / "
            f"{agent['tool_calls_per_question']} |",
            f"| tokens (in / out) | {agent['input_tokens']:,} / {agent['output_tokens']:,} "
            f"({agent['tokens_per_question']} per question) |",
            f"| cost | ${agent['cost_usd']:.4f} (${agent['cost_usd_per_question']:.6f} per "
            "question) |",
        ]
    for title, key in (("By difficulty", "by_difficulty"), ("By tag", "by_tag")):
        table = summary.get(key) or {}
        if table:
            lines += ["", f"## {title}", "", "| | n | correct | accuracy |", "|---|---|---|---|"]
            for name, row in table.items():
                lines.append(f"| {name} | {row['n']} | {row['correct']} | {row['accuracy']:.2%} |")
    if summary.get("errors_by_code"):
        lines += ["", "## Outcomes other than correct", "", "| code | questions |", "|---|---|"]
        for code, count in summary["errors_by_code"].items():
            lines.append(f"| {code} | {count} |")
    if summary.get("missing_databases"):
        lines += ["", f"Missing databases: {', '.join(summary['missing_databases'])}."]
    worst = worst_failures(list(records.values()))
    if worst:
        lines += ["", f"## The {len(worst)} worst failures", ""]
        for record in worst:
            lines += _failure(record)
    return "\n".join(lines) + "\n"


def _failure(record: dict[str, Any]) -> list[str]:
    error = record.get("error") or {}
    label = record.get("question_id") or f"#{record['index']}"
    out = [
        f"### {label} ({record['db']}): {error.get('code', 'wrong')}",
        "",
        f"> {record.get('question', '')}",
        "",
        f"Error: {error.get('message') or '-'}",
        "",
        "Gold:",
        "```sql",
        str(record.get("gold_sql") or ""),
        "```",
        "Predicted:",
        "```sql",
        str(record.get("pred_sql") or "(none)"),
        "```",
        "",
    ]
    return out


def write_report(folder: Path, summary: dict[str, Any], records: dict[int, dict[str, Any]]) -> Path:
    """report.md in the run's folder (over the summary's questions' records)."""
    path = folder / REPORT
    path.write_text(render_report(summary, records), encoding="utf-8")
    return path


def load_run(folder: Path | str) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """A finished run's summary and records, or a clear error saying what is missing."""
    folder = Path(folder)
    summary_path = folder / SUMMARY
    if not summary_path.is_file() or not (folder / RESULTS).is_file():
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"'{folder}' is not an eval run folder: it has no {SUMMARY} and {RESULTS}.",
            hint="Pass the --out folders of two `sqlsage eval run` runs.",
        )
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise SqlsageError(
            INVALID_ARGUMENT, f"'{summary_path}' is not valid JSON ({error})."
        ) from None
    return summary, read_records(folder)


def _key(record: dict[str, Any]) -> str:
    return str(record.get("question_id") or record["index"])


def _metric(summary: dict[str, Any], dotted: str) -> float | None:
    value: Any = summary
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


def compare_runs(folder_a: Path | str, folder_b: Path | str) -> dict[str, Any]:
    """What changed from run A to run B: flipped questions and every metric's delta."""
    summary_a, records_a = load_run(folder_a)
    summary_b, records_b = load_run(folder_b)
    if summary_a.get("dataset") != summary_b.get("dataset"):
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"The runs are of different datasets: '{summary_a.get('dataset')}' and "
            f"'{summary_b.get('dataset')}'.",
            hint="Compare two runs over the same dataset file.",
        )
    by_key_a = {_key(r): r for r in records_a.values()}
    by_key_b = {_key(r): r for r in records_b.values()}
    common = [k for k in by_key_a if k in by_key_b]
    flipped: dict[str, list[dict[str, Any]]] = {"right_to_wrong": [], "wrong_to_right": []}
    for key in common:
        a, b = by_key_a[key]["correct"], by_key_b[key]["correct"]
        if a is None or b is None or a == b:
            continue
        record = by_key_b[key]
        entry = {
            "question_id": key,
            "db": record["db"],
            "question": record.get("question"),
            "pred_sql_a": by_key_a[key].get("pred_sql"),
            "pred_sql_b": record.get("pred_sql"),
            "error_b": (record.get("error") or {}).get("message") if a else None,
        }
        flipped["right_to_wrong" if a else "wrong_to_right"].append(entry)
    metrics = {}
    for name, kind in METRICS:
        value_a, value_b = _metric(summary_a, name), _metric(summary_b, name)
        if value_a is None and value_b is None:
            continue
        delta = None if value_a is None or value_b is None else value_b - value_a
        metrics[name] = {"a": value_a, "b": value_b, "delta": delta, "kind": kind}
    return {
        "a": str(folder_a),
        "b": str(folder_b),
        "n_common": len(common),
        "only_in_a": len(by_key_a) - len(common),
        "only_in_b": len(by_key_b) - len(common),
        "metrics": metrics,
        **flipped,
    }


def _show(value: float | None, kind: str, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    sign = "+" if signed and value > 0 else ""
    if kind == "pct":
        return f"{sign}{value * 100:.2f}{' pp' if signed else ' %'}"
    if kind == "int":
        return f"{sign}{int(value)}"
    if kind == "ms":
        return f"{sign}{value:.0f} ms"
    if kind == "usd":
        return f"{sign}${value:.6f}"
    return f"{sign}{value:.2f}"


def render_comparison(comparison: dict[str, Any]) -> str:
    """`sqlsage eval compare`'s text: the metric table, then the flipped questions."""
    alone = [
        f"{comparison[key]} only in {side}"
        for key, side in (("only_in_a", "A"), ("only_in_b", "B"))
        if comparison[key]
    ]
    lines = [
        f"A: {comparison['a']}",
        f"B: {comparison['b']}",
        f"{comparison['n_common']} questions in both runs"
        + (f" ({'; '.join(alone)})" if alone else ""),
        "",
        f"{'metric':34s} {'A':>14s} {'B':>14s} {'B - A':>14s}",
    ]
    for name, row in comparison["metrics"].items():
        kind = row["kind"]
        lines.append(
            f"{name:34s} {_show(row['a'], kind):>14s} {_show(row['b'], kind):>14s} "
            f"{_show(row['delta'], kind, signed=True):>14s}"
        )
    for title, key in (("right -> wrong", "right_to_wrong"), ("wrong -> right", "wrong_to_right")):
        entries = comparison[key]
        lines += ["", f"{title}: {len(entries)}"]
        for entry in entries:
            lines.append(f"  {entry['question_id']} ({entry['db']}): {entry['question']}")
            lines.append(f"    A: {entry['pred_sql_a']}")
            lines.append(f"    B: {entry['pred_sql_b']}")
    return "\n".join(lines) + "\n"
