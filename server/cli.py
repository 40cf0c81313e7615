"""`sqlsage` commands. Heavy modules are imported inside commands to keep start-up fast."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from tools.errors import (
    INVALID_ARGUMENT,
    INVALID_CONFIG,
    MODEL_UNAVAILABLE,
    ROW_CAP,
    UNKNOWN_DATABASE,
    SqlsageError,
)

if TYPE_CHECKING:
    from server.resources import Resources
    from tools.databases import Database

# Errors in what the user asked for (exit 2) as opposed to a query that failed (exit 1).
USAGE_CODES = frozenset(
    {INVALID_CONFIG, UNKNOWN_DATABASE, INVALID_ARGUMENT, ROW_CAP, MODEL_UNAVAILABLE}
)

app = typer.Typer(
    name="sqlsage",
    help="Ask a database in plain language; validate and run read-only SQL; chart results.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sql_app = typer.Typer(help="Validate or run one read-only SQL statement.", no_args_is_help=True)
db_app = typer.Typer(help="Inspect configured databases.", no_args_is_help=True)
knowledge_app = typer.Typer(
    help="Curate the knowledge files (knowledge/NAME.yml).", no_args_is_help=True
)
app.add_typer(sql_app, name="sql")
app.add_typer(db_app, name="db")
app.add_typer(knowledge_app, name="knowledge")
eval_app = typer.Typer(
    help="Score text-to-SQL on Spider/BIRD-format datasets (official semantics).",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="A configured database name, or (locally) a SQLAlchemy URL."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SqlArgument = Annotated[str, typer.Argument(help="The SQL; '-' reads it from standard input.")]


class DetailChoice(StrEnum):
    """How much schema_lookup says per table."""

    names = "names"
    summary = "summary"
    full = "full"


@dataclass
class CliState:
    """Per-invocation state: the --config path and the lazily built resources."""

    config: Path | None = None
    resources: Resources | None = None
    json_mode: bool = False

    def get_resources(self) -> Resources:
        """Settings and databases, built on first use."""
        if self.resources is None:
            from server.resources import build_resources
            from server.settings import load_settings

            self.resources = build_resources(load_settings(self.config))
        return self.resources

    def database(self, name: str | None) -> Database:
        """The database for --db: a configured name or, on the local CLI, a URL."""
        return self.get_resources().database(name, allow_url=True)


STATE = CliState()


@app.callback()
def _global(
    config: Annotated[
        Path | None, typer.Option("--config", help="Path of sqlsage.toml (or SQLSAGE_CONFIG).")
    ] = None,
) -> None:
    STATE.config = config


def _read_sql(sql: str) -> str:
    return sys.stdin.read() if sql == "-" else sql


def _emit_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False, default=str))


def fail(error: SqlsageError, *, exit_code: int | None = None) -> NoReturn:
    """Print the error (JSON or human) and exit: 2 for usage/config, 1 otherwise."""
    code = exit_code if exit_code is not None else (2 if error.code in USAGE_CODES else 1)
    if STATE.json_mode:
        _emit_json({"error": error.to_dict()})
    else:
        from server.cli_output import print_error

        print_error(error)
    raise typer.Exit(code)


@app.command()
def schema(
    db: DbOption = None,
    table: Annotated[
        list[str] | None, typer.Option("--table", "-t", help="Only these tables (repeatable).")
    ] = None,
    pattern: Annotated[
        str | None, typer.Option("--pattern", help="Glob or substring over table names.")
    ] = None,
    detail: Annotated[
        DetailChoice, typer.Option(help="names, summary or full.", case_sensitive=False)
    ] = DetailChoice.full,
    limit: Annotated[int, typer.Option(help="Tables per page.")] = 50,
    offset: Annotated[int, typer.Option(help="First table of the page.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Show tables, columns, keys, comments and sample values."""
    from tools.schema_lookup import schema_lookup

    STATE.json_mode = as_json
    try:
        page = schema_lookup(
            STATE.database(db),
            tables=table,
            pattern=pattern,
            detail=detail.value,
            limit=limit,
            offset=offset,
        )
    except SqlsageError as error:
        fail(error)
    if as_json:
        _emit_json(page.model_dump())
    else:
        from server.cli_output import print_schema

        print_schema(page)


@sql_app.command("validate")
def sql_validate(
    sql: SqlArgument,
    db: DbOption = None,
    from_dialect: Annotated[
        str | None, typer.Option("--from-dialect", help="Transpile from this sqlglot dialect.")
    ] = None,
    max_rows: Annotated[
        int | None, typer.Option("--max-rows", help="LIMIT to inject (default: the db cap).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a statement is a read-only query over known tables; print the normalized SQL.

    Exit 0 valid, 1 rejected, 2 usage or configuration error."""
    from tools.run_sql import check_max_rows
    from tools.validate_sql import validate_for

    STATE.json_mode = as_json
    try:
        database = STATE.database(db)
        result = validate_for(
            database,
            _read_sql(sql),
            max_rows=check_max_rows(database, max_rows),
            from_dialect=from_dialect,
        )
    except SqlsageError as error:
        fail(error)
    if as_json:
        payload = result.model_dump(include={"valid", "sql", "dialect", "tables", "errors"})
        for error_dict in payload["errors"]:
            error_dict.pop("sql", None)
        _emit_json(payload)
    else:
        from server.cli_output import print_validation

        print_validation(result)
    raise typer.Exit(0 if result.valid else 1)


@sql_app.command("run")
def sql_run(
    sql: SqlArgument,
    db: DbOption = None,
    max_rows: Annotated[int | None, typer.Option("--max-rows", help="Row cap.")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate and run one read-only query. Exit 0 ok, 1 rejected or failed."""
    from tools.run_sql import run_sql

    STATE.json_mode = as_json
    try:
        result = run_sql(STATE.database(db), _read_sql(sql), max_rows=max_rows, timeout_s=timeout)
    except SqlsageError as error:
        fail(error)
    if as_json:
        _emit_json(
            result.model_dump(
                include={"columns", "rows", "row_count", "truncated", "elapsed_ms", "sql"}
            )
        )
    else:
        from server.cli_output import print_result

        print_result(result)


@app.command()
def chart(
    sql: SqlArgument,
    db: DbOption = None,
    chart_type: Annotated[
        str, typer.Option("--type", help="auto, bar, line, scatter, pie or table.")
    ] = "auto",
    x: Annotated[str | None, typer.Option(help="Field on the x axis.")] = None,
    y: Annotated[str | None, typer.Option(help="Field on the y axis.")] = None,
    color: Annotated[str | None, typer.Option(help="Field for color/series.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write FILE.svg, FILE.png or FILE.json.")
    ] = None,
    max_rows: Annotated[int | None, typer.Option("--max-rows", help="Row cap.")] = None,
) -> None:
    """Run a query and chart it (Vega-Lite); print the spec or write SVG/PNG/JSON."""
    from tools.build_chart import build_chart, write_chart
    from tools.run_sql import run_sql

    try:
        result = run_sql(STATE.database(db), _read_sql(sql), max_rows=max_rows)
        spec = build_chart(result, chart_type=chart_type, x=x, y=y, color=color)
        if out is None:
            _emit_json(spec.spec)
            return
        written = write_chart(spec, out)
    except SqlsageError as error:
        fail(error)
    typer.echo(f"{spec.type} chart ({spec.reason}) written to {written}")


@db_app.command("check")
def db_check(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Connect; report dialect, version, tables, read-only enforcement and write rights."""
    from tools.db_check import check_database

    STATE.json_mode = as_json
    try:
        report = check_database(STATE.database(db))
    except SqlsageError as error:
        fail(error)
    if as_json:
        _emit_json(report.model_dump())
    else:
        from server.cli_output import print_check

        print_check(report)


@db_app.command("list")
def db_list(as_json: JsonOption = False) -> None:
    """List configured databases (passwords masked)."""
    STATE.json_mode = as_json
    try:
        resources = STATE.get_resources()
    except SqlsageError as error:
        fail(error)
    rows = [
        {
            "name": n,
            "dialect": resources.databases.get(n).dialect,
            "url": resources.databases.get(n).masked_url,
            "description": resources.databases.get(n).config.description,
        }
        for n in resources.databases.names()
    ]
    if as_json:
        _emit_json(rows)
    else:
        for row in rows:
            typer.echo(f"{row['name']:<16} {row['dialect']:<10} {row['url']}")


@app.command()
def index(
    db: DbOption = None,
    all_databases: Annotated[
        bool, typer.Option("--all", help="Every configured database.")
    ] = False,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Re-embed everything.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Build or refresh the knowledge index (only changed tables are re-embedded)."""
    from server.indexing import run_index

    STATE.json_mode = as_json
    try:
        resources = STATE.get_resources()
        names = resources.databases.names() if all_databases else [STATE.database(db).name]
        failed = run_index(resources, names, rebuild=rebuild, as_json=as_json)
    except SqlsageError as error:
        fail(error)
    raise typer.Exit(1 if failed else 0)


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="The question, in plain language.")],
    db: DbOption = None,
    k: Annotated[int, typer.Option("--k", help="Tables to return (before join tables).")] = 8,
    as_json: JsonOption = False,
) -> None:
    """Find the tables, columns, values, glossary terms and examples a question needs."""
    from tools.semantic_search import semantic_search

    STATE.json_mode = as_json
    try:
        resources = STATE.get_resources()
        result = semantic_search(resources.index, STATE.database(db), question, k=k)
    except SqlsageError as error:
        fail(error)
    if as_json:
        _emit_json(result.model_dump(include={"hits", "tables", "context"}))
    else:
        from server.cli_output import print_search

        print_search(result)


@knowledge_app.command("add-example")
def knowledge_add_example(
    question: Annotated[str, typer.Argument(help="The question.")],
    sql: SqlArgument,
    db: DbOption = None,
) -> None:
    """Append a verified question/SQL pair (validated first) to knowledge/NAME.yml."""
    from memory.knowledge import add_example
    from server.resources import knowledge_file

    try:
        resources = STATE.get_resources()
        database = resources.database(db)
        path = knowledge_file(resources.settings, database.name, for_writing=True)
        add_example(path, question, _read_sql(sql), database)
        report = resources.index.build(database)
    except SqlsageError as error:
        fail(error)
    typer.echo(f"Added to {path}; index updated ({report.embedded} documents embedded).")


ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model", help="builtin (offline), or a litellm model such as openai/gpt-4o-mini."
    ),
]
SessionOption = Annotated[
    str | None, typer.Option("--session", help="Continue this session (its id).")
]


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, in plain language.")],
    db: DbOption = None,
    model: ModelOption = None,
    session: SessionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask a question: steps stream as they happen, then the SQL, rows, chart and answer."""
    from graphs.turns import Turn
    from server.cli_ask import run_ask

    STATE.json_mode = as_json
    try:
        code = run_ask(
            STATE.get_resources(), Turn(question, session_id=session, db=db, model=model), as_json
        )
    except SqlsageError as error:
        fail(error)
    raise typer.Exit(code)


@app.command()
def chat(db: DbOption = None, model: ModelOption = None, session: SessionOption = None) -> None:
    """A conversation over one session: follow-ups reuse the previous SQL and result."""
    from server.cli_ask import run_chat

    try:
        run_chat(STATE.get_resources(), db, model, session)
    except SqlsageError as error:
        fail(error)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    db: Annotated[
        list[str] | None,
        typer.Option("--db", help="Database(s) to serve, the first the default (name or URL)."),
    ] = None,
    model: ModelOption = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    insecure_no_auth: Annotated[
        bool,
        typer.Option("--insecure-no-auth", help="Allow a non-loopback address without API keys."),
    ] = False,
) -> None:
    """Serve the chat API (SSE), sessions, traces, feedback, export and metrics over HTTP."""
    from server.serve import ServeOptions, run_server

    try:
        run_server(
            ServeOptions(
                host=host,
                port=port,
                dbs=list(db or []),
                model=model,
                workers=workers,
                insecure_no_auth=insecure_no_auth,
                config=STATE.config,
            )
        )
    except SqlsageError as error:
        fail(error)


@app.command()
def mcp(
    transport: Annotated[
        str, typer.Option("--transport", help="stdio (Claude Desktop/Code) or http.")
    ] = "stdio",
    host: Annotated[str, typer.Option("--host", help="HTTP: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="HTTP: TCP port.")] = 8001,
    db: Annotated[
        list[str] | None,
        typer.Option("--db", help="Database(s) to serve, the first the default (name or URL)."),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option("--insecure-no-auth", help="HTTP: allow a non-loopback address without keys."),
    ] = False,
) -> None:
    """Serve the tools, resources and prompts over MCP (stdio, or streamable HTTP at /mcp)."""
    from server.mcp_serve import McpOptions, run_mcp

    try:
        run_mcp(
            McpOptions(
                transport=transport,
                host=host,
                port=port,
                dbs=list(db or []),
                insecure_no_auth=insecure_no_auth,
                config=STATE.config,
            )
        )
    except SqlsageError as error:
        fail(error)


@eval_app.command("run")
def eval_run(
    dataset: Annotated[
        Path, typer.Option("--dataset", help="Question file, or a Spider folder with dev.json.")
    ],
    fmt: Annotated[str, typer.Option("--format", help="spider, bird or jsonl.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for results.jsonl and summary.json.")],
    predictions: Annotated[
        Path | None,
        typer.Option("--predictions", help="Score this file of predicted SQL (no model runs)."),
    ] = None,
    db_dir: Annotated[
        Path | None, typer.Option("--db-dir", help="Where the databases are (default: beside).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="First N questions.")] = None,
    ids: Annotated[
        list[str] | None, typer.Option("--ids", help="Only these question ids (or positions).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Questions scored at once.")] = 1,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Seconds per query before it counts as wrong (default: the official limit, "
            "Spider 60, BIRD 30; jsonl 30).",
        ),
    ] = None,
    keep_distinct: Annotated[
        bool, typer.Option("--keep-distinct", help="Spider: do not strip DISTINCT (official flag).")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="Run the agent with this model (builtin, openai/gpt-4o, ...)."
        ),
    ] = None,
    no_evidence: Annotated[
        bool, typer.Option("--no-evidence", help="Withhold BIRD's evidence from the agent.")
    ] = False,
    turn_timeout: Annotated[
        float, typer.Option("--turn-timeout", help="Seconds per question for the agent's turn.")
    ] = 300.0,
    as_json: JsonOption = False,
) -> None:
    """Score a dataset: execution accuracy as the official Spider/BIRD evaluators compute it,
    of a predictions file or of the agent (--model) run on every question."""
    from evals.runner import EvalOptions
    from server.eval_cli import run_eval

    STATE.json_mode = as_json
    try:
        code = run_eval(
            EvalOptions(
                dataset=dataset,
                format=fmt,
                out=out,
                predictions=predictions,
                db_dir=db_dir,
                limit=limit,
                ids=list(ids or []),
                workers=workers,
                timeout_s=timeout,
                keep_distinct=keep_distinct,
                model=model,
                evidence=not no_evidence,
                turn_timeout_s=turn_timeout,
                config=STATE.config,
            ),
            as_json=as_json,
        )
    except SqlsageError as error:
        fail(error)
    raise typer.Exit(code)


@eval_app.command("compare")
def eval_compare(
    run_a: Annotated[Path, typer.Argument(help="The --out folder of the earlier run.")],
    run_b: Annotated[Path, typer.Argument(help="The --out folder of the later run.")],
    as_json: JsonOption = False,
) -> None:
    """What changed between two runs: questions that flipped, and every metric's delta."""
    from server.eval_cli import compare

    STATE.json_mode = as_json
    try:
        code = compare(run_a, run_b, as_json=as_json)
    except SqlsageError as error:
        fail(error)
    raise typer.Exit(code)


@app.command()
def demo(db: DbOption = None) -> None:
    """The main job on embedded defaults: schema, then a question's SQL validated, run, charted."""
    from server.demo import run_demo

    try:
        run_demo(STATE.get_resources(), STATE.database(db))
    except SqlsageError as error:
        fail(error)


def main() -> None:
    """Console entry point: never a traceback for a user error."""
    try:
        app()
    except SqlsageError as error:  # pragma: no cover - commands catch their own
        fail(error)
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        sys.exit(130)
