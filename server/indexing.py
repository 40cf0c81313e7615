"""`sqlsage index`: build each database's index with a progress bar; one failure does not stop
the others."""

from __future__ import annotations

import json

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from server.resources import Resources
from tools.errors import SqlsageError


def run_index(resources: Resources, names: list[str], *, rebuild: bool, as_json: bool) -> bool:
    """Index the named databases; print a report each; True if any failed."""
    console = Console(stderr=as_json, highlight=False)
    reports: list[dict[str, object]] = []
    failed = False
    for name in names:
        database = resources.database(name)
        with Progress(
            TextColumn(f"[bold]{name}[/] {{task.description}}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=as_json,
        ) as progress:
            task = progress.add_task("reading schema", total=None)

            def step(stage: str, done: int, total: int, task_id: TaskID = task) -> None:
                progress.update(task_id, description=stage, completed=done, total=total)

            try:
                report = resources.index.build(database, rebuild=rebuild, progress=step)
            except SqlsageError as error:
                failed = True
                reports.append({"database": name, "error": error.to_dict()})
                if not as_json:
                    from server.cli_output import print_error

                    print_error(error)
                continue
        reports.append(report.model_dump())
        if not as_json:
            console.print(
                f"[green]{name}[/]: {report.documents} documents, {report.groups_changed} of "
                f"{report.groups_total} groups re-embedded ({report.embedded} documents), "
                f"{report.groups_removed} removed, {report.elapsed_s:.1f} s"
            )
            for warning in report.warnings:
                console.print(f"[yellow]Warning:[/] {warning}")
            for problem in report.problems:
                console.print(f"[yellow]Knowledge problem:[/] {problem}")
    if as_json:
        print(json.dumps(reports, indent=2, default=str))
    return failed
