"""`sqlsage eval run` for a person: a progress bar (done/total, running accuracy, ETA) on
stderr, then the summary; or the summary as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from evals.report import compare_runs, render_comparison
from evals.runner import EvalOptions
from evals.runner import run_eval as run_options
from evals.scoring import RESULTS


def compare(folder_a: Path, folder_b: Path, *, as_json: bool) -> int:
    """Print what changed from run A to run B."""
    comparison = compare_runs(folder_a, folder_b)
    if as_json:
        print(json.dumps(comparison, indent=2))
    else:
        print(render_comparison(comparison), end="")
    return 0


def run_eval(options: EvalOptions, *, as_json: bool) -> int:
    """Run (score, or the agent then score) and report; exit 0 when every selected question
    was scored."""
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[accuracy]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("eval", total=None, accuracy="")

        def progress(done: int, total: int, correct: int, scored: int) -> None:
            accuracy = f"EX {correct / scored:.1%}" if scored else ""
            bar.update(task, completed=done, total=total, accuracy=accuracy)

        try:
            summary = run_options(options, progress)
        except KeyboardInterrupt:
            console.print(
                f"Stopped. Every question finished so far is in {options.out / RESULTS}; run the "
                "same command again to go on from there.",
                highlight=False,
                markup=False,
            )
            return 130
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(console, summary)
    return 0 if summary["n_pending"] == 0 else 1


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    out = Console()
    out.print(
        f"execution accuracy {summary['execution_accuracy']:.2%} "
        f"({summary['n_correct']} / {summary['n_scored']} scored; {summary['n_skipped']} skipped, "
        f"database missing; {summary['n_dataset_errors']} dataset errors) "
        f"in {summary['elapsed_s']:.1f} s",
        markup=False,
        highlight=False,
    )
    out.print(
        f"valid SQL {summary['valid_sql_rate']:.2%}, exact-set match "
        f"{summary['exact_set_match']:.2%} (informative)",
        markup=False,
        highlight=False,
    )
    agent = summary.get("agent") or {}
    if agent:
        out.print(
            f"per question: p50 {agent['latency_ms_p50']:.0f} ms, p95 "
            f"{agent['latency_ms_p95']:.0f} ms, {agent['model_calls_per_question']} model calls, "
            f"{agent['tool_calls_per_question']} tool calls, {agent['tokens_per_question']} "
            f"tokens; total cost ${agent['cost_usd']:.4f}",
            markup=False,
            highlight=False,
        )
    for level, row in summary.get("by_difficulty", {}).items():
        out.print(f"  {level:12s} {row['accuracy']:.2%} ({row['correct']}/{row['n']})")
    out.print(f"report: {summary['report']}", markup=False, highlight=False)
    if summary["missing_databases"]:
        console.print(
            f"[yellow]missing databases:[/] {', '.join(summary['missing_databases'])}",
            highlight=False,
        )
