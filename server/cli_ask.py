"""`sqlsage ask` and `sqlsage chat`: a question through the agent, steps shown as they happen."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from graphs.events import Event
from graphs.turns import Turn, TurnRunner, collect
from server.resources import Resources

CHAT_HELP = "Commands: /sql (last SQL), /chart (write the last chart), /new (new session), /quit"


def _show(console: Console, event: Event, state: dict[str, Any]) -> None:
    """One event for a person: steps dimmed, the answer streamed, SQL and rows printed."""
    data = event.data
    if event.event == "step" and data.get("status") == "end" and data.get("name") != "agent":
        console.print(
            f"[dim]  · {data['name']}: {data.get('summary', '')} "
            f"({data.get('elapsed_ms', 0):.0f} ms)[/dim]"
        )
    elif event.event == "step" and data.get("name") == "agent" and data.get("status") == "start":
        console.print("[dim]  · thinking…[/dim]")
    elif event.event == "sql" and data.get("valid"):
        state["sql"] = data["sql"]
    elif event.event == "table":
        state["table"] = data
    elif event.event == "chart":
        state["chart"] = data["spec"]
    elif event.event == "reasoning":
        console.print(f"[dim italic]{data['text']}[/dim italic]", end="")
    elif event.event == "error":
        console.print(f"[red]Error [{data['code']}]: {data['message']}[/red]")
        if data.get("hint"):
            console.print(f"[yellow]Hint: {data['hint']}[/yellow]")


def _finish(console: Console, state: dict[str, Any], answer: str) -> None:
    from server.cli_output import print_result
    from tools.results import Column, QueryResult

    if state.get("sql"):
        console.print("[bold]SQL[/bold]")
        console.print(state["sql"], markup=False, highlight=False)
    table = state.get("table")
    if table:
        print_result(
            QueryResult(
                columns=[Column(**c) for c in table["columns"]],
                rows=table["rows"],
                row_count=table["row_count"],
                truncated=table["truncated"],
                elapsed_ms=table["elapsed_ms"],
            ),
            max_shown=20,
        )
    if state.get("chart"):
        console.print(f"[dim]chart: {state['chart'].get('mark', {})}[/dim]")
    console.print(f"\n[bold]{answer}[/bold]")


async def ask_once(
    runner: TurnRunner, turn: Turn, *, as_json: bool, console: Console
) -> dict[str, Any]:
    """Run one turn, printing as it goes (unless JSON); returns the ask-json dict."""
    events: list[Event] = []
    state: dict[str, Any] = {}
    async for event in runner.stream(turn):
        events.append(event)
        if not as_json:
            _show(console, event, state)
    out = collect(events)
    if not as_json:
        _finish(console, state, out["answer"])
    return out


async def _ask(resources: Resources, turn: Turn, as_json: bool) -> dict[str, Any]:
    from server.agent_runtime import open_runner

    console = Console(highlight=False, stderr=as_json)
    async with open_runner(resources) as runner:
        return await ask_once(runner, turn, as_json=as_json, console=console)


def run_ask(resources: Resources, turn: Turn, as_json: bool) -> int:
    """`sqlsage ask`: exit 0 answered, 1 could not answer."""
    out = asyncio.run(_ask(resources, turn, as_json))
    if as_json:
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    return 0 if out["status"] == "answered" else 1


async def _chat(
    resources: Resources, db: str | None, model: str | None, session: str | None
) -> None:
    from server.agent_runtime import open_runner
    from tools.errors import SqlsageError

    console = Console(highlight=False)
    console.print(f"[dim]sqlsage chat. {CHAT_HELP}[/dim]")
    session_id = session
    last: dict[str, Any] = {}
    async with open_runner(resources) as runner:
        while True:
            try:
                line = (await asyncio.to_thread(input, "you> ")).strip()
            except (EOFError, KeyboardInterrupt):
                console.print()
                return
            if not line:
                continue
            if line in ("/quit", "/exit"):
                return
            if line == "/new":
                session_id, last = None, {}
                console.print("[dim]New session.[/dim]")
                continue
            if line == "/sql":
                console.print(last.get("sql") or "No SQL yet.", markup=False)
                continue
            if line == "/chart":
                _write_chart(console, resources, last)
                continue
            if line.startswith("/"):
                console.print(f"[yellow]Unknown command {line!r}. {CHAT_HELP}[/yellow]")
                continue
            try:
                out = await ask_once(
                    runner,
                    Turn(line, session_id=session_id, db=db, model=model),
                    as_json=False,
                    console=console,
                )
            except SqlsageError as error:
                console.print(f"[red]Error [{error.code}]: {error.message}[/red]")
                if error.hint:
                    console.print(f"[yellow]Hint: {error.hint}[/yellow]")
                continue
            session_id = out["session_id"]
            last = out


def _write_chart(console: Console, resources: Resources, last: dict[str, Any]) -> None:
    from tools.build_chart import ChartSpec, write_chart

    spec = last.get("chart")
    if not spec:
        console.print("No chart yet.")
        return
    path = Path(resources.settings.data_dir) / "charts" / f"{last['session_id']}-{last['turn']}.svg"
    mark = spec.get("mark")
    kind = mark.get("type") if isinstance(mark, dict) else mark
    # Only the spec is rendered; the type is a label (layered or text marks have none of ours).
    chart = ChartSpec(
        type=kind if kind in ("bar", "line", "scatter", "pie") else "table",
        spec=spec,
        reason="from chat",
    )
    console.print(f"Chart written to {write_chart(chart, path)}", soft_wrap=True, markup=False)


def run_chat(resources: Resources, db: str | None, model: str | None, session: str | None) -> None:
    """`sqlsage chat`: a REPL over one session."""
    asyncio.run(_chat(resources, db, model, session))
