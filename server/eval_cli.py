"""`sqlsage eval run` for a person: a progress bar (done/total, running accuracy, ETA) on
stderr, then the summary; or the summary as JSON."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from evals.runner import EvalOptions, score_predictions
from tools.errors import INVALID_ARGUMENT, SqlsageError


def run_eval(options: EvalOptions, *, as_json: bool) -> int:
    """Run (score) and report; exit 0 when every selected question was scored."""
    if options.predictions is None:
        raise SqlsageError(
            INVALID_ARGUMENT,
            "No --predictions file given.",
            hint="Pass --predictions FILE (one SQL per question in dataset order); running the "
            "agent over a dataset with --model is not built yet.",
        )
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

        summary = score_predictions(options, progress)
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
    for level, row in summary.get("by_difficulty", {}).items():
        out.print(f"  {level:12s} {row['accuracy']:.2%} ({row['correct']}/{row['n']})")
    if summary["missing_databases"]:
        console.print(
            f"[yellow]missing databases:[/] {', '.join(summary['missing_databases'])}",
            highlight=False,
        )
