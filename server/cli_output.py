"""Human-readable CLI output (rich), imported only when a command prints for a person."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

if TYPE_CHECKING:
    from tools.db_check import DbCheck
    from tools.errors import SqlsageError
    from tools.results import QueryResult
    from tools.schema_lookup import SchemaPage
    from tools.semantic_search import SearchResult
    from tools.validate_sql import ValidationResult

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def print_error(error: SqlsageError) -> None:
    """The error code, message, position and hint on stderr."""
    where = f" (line {error.line}, col {error.col})" if error.line is not None else ""
    # The message and hint quote user values and config keys ("[databases.NAME]"): escaped,
    # so rich does not take them for markup and drop them.
    err.print(
        f"[bold red]Error[/] [red]{error.code}[/]{where}: {escape(error.message)}",
        markup=True,
        soft_wrap=True,
    )
    if error.hint:
        err.print(f"[yellow]Hint:[/] {escape(error.hint)}", soft_wrap=True)


def print_schema(page: SchemaPage) -> None:
    """The CREATE TABLE-like text, highlighted."""
    out.print(f"[bold]{page.database}[/] ({page.dialect}) - {page.total_tables} tables")
    out.print(Syntax(page.text, "sql", word_wrap=True, theme="ansi_dark"))


def print_validation(result: ValidationResult) -> None:
    """Valid: the normalized SQL. Rejected: every error with its hint."""
    if result.valid:
        out.print(f"[green]valid[/] ({result.dialect}; tables: {', '.join(result.tables) or '-'})")
        out.print(Syntax(result.sql, "sql", word_wrap=True, theme="ansi_dark"))
        return
    from tools.errors import SqlsageError

    for info in result.errors:
        print_error(
            SqlsageError(info.code, info.message, hint=info.hint, line=info.line, col=info.col)
        )


def print_result(result: QueryResult, max_shown: int = 100) -> None:
    """The rows as a table, with counts and timing."""
    table = Table(show_header=True, header_style="bold")
    for column in result.columns:
        justify = "right" if column.type in ("integer", "number") else "left"
        table.add_column(f"{column.name}\n[dim]{column.type}[/]", justify=justify)  # type: ignore[arg-type]
    for row in result.rows[:max_shown]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    out.print(table)
    more = " (truncated: more rows exist)" if result.truncated else ""
    shown = f", {max_shown} shown" if result.row_count > max_shown else ""
    out.print(f"[dim]{result.row_count} rows{shown}{more} in {result.elapsed_ms:.1f} ms[/]")
    out.print(f"[dim]{result.sql}[/]", soft_wrap=True)


def print_check(report: DbCheck) -> None:
    """The db check report with warnings highlighted."""
    table = Table(show_header=False, box=None)
    table.add_row("database", report.database)
    table.add_row("url", report.url)
    table.add_row("dialect", report.dialect)
    table.add_row("server", report.server_version)
    table.add_row("tables", str(report.table_count))
    table.add_row(
        "read-only session", "[green]yes[/]" if report.read_only_session else "[red]no[/]"
    )
    can = report.login_can_write
    table.add_row(
        "login could write",
        "unknown" if can is None else ("[yellow]yes[/]" if can else "[green]no[/]"),
    )
    out.print(table)
    for warning in report.warnings:
        err.print(f"[yellow]Warning:[/] {warning}", soft_wrap=True)


def print_search(result: SearchResult) -> None:
    """Ranked tables, the top hits, then the rendering a model would get."""
    out.print(f"[bold]tables:[/] {', '.join(result.tables) or '-'}")
    table = Table(show_header=True, header_style="bold")
    for name in ("score", "kind", "where", "text"):
        table.add_column(name)
    for hit in result.hits[:10]:
        where = ".".join(filter(None, (hit.table, hit.column)))
        table.add_row(f"{hit.score:.4f}", hit.kind, where, hit.text[:80])
    out.print(table)
    out.print(Syntax(result.context, "sql", word_wrap=True, theme="ansi_dark"))
