"""`make demo` for now: the sample schema, a question's semantic search, then its SQL validated,
run and charted.

Steps 1-6 call the tools directly; step 7 asks the agent, which calls the same tools.
"""

from __future__ import annotations

from typing import Any

from server.resources import Resources
from tools.databases import Database

DEMO_QUESTION = "Revenue by product category in 2024"
DEMO_SQL = """
SELECT c.name AS category,
       ROUND(SUM(oi.quantity * oi.unit_price * (1 - oi.discount)), 2) AS revenue
FROM order_items AS oi
JOIN orders AS o ON o.order_id = oi.order_id
JOIN products AS p ON p.product_id = oi.product_id
JOIN categories AS c ON c.category_id = p.category_id
WHERE o.status <> 'cancelled' AND o.order_date BETWEEN '2024-01-01' AND '2024-12-31'
GROUP BY c.name
ORDER BY revenue DESC
"""


def run_demo(resources: Resources, database: Database) -> None:
    """Print schema, validation, rows and where the chart was written."""
    from rich.console import Console
    from rich.rule import Rule

    from server.cli_output import print_check, print_result, print_schema, print_validation
    from tools.build_chart import build_chart, write_chart
    from tools.db_check import check_database
    from tools.run_sql import run_sql
    from tools.schema_lookup import schema_lookup
    from tools.validate_sql import validate_for

    console = Console(highlight=False)
    console.print(Rule(f"1. Database '{database.name}'"))
    print_check(check_database(database))
    console.print(Rule("2. schema_lookup"))
    print_schema(schema_lookup(database, detail="summary"))
    if database.name != "sample":
        return
    console.print(Rule(f"3. semantic_search  (question: {DEMO_QUESTION!r})"))
    from tools.semantic_search import semantic_search

    found = semantic_search(resources.index, database, DEMO_QUESTION, k=3)
    console.print(f"tables: {', '.join(found.tables)}")
    for hit in found.hits[:5]:
        where = ".".join(filter(None, (hit.table, hit.column)))
        console.print(f"  {hit.kind:<8} {where:<28} {hit.text[:70]}")
    console.print(Rule("4. validate_sql"))
    print_validation(validate_for(database, DEMO_SQL))
    console.print(Rule("5. run_sql (read-only connection, time limit, row cap)"))
    result = run_sql(database, DEMO_SQL)
    print_result(result)
    console.print(Rule("6. build_chart"))
    chart = build_chart(result, title=DEMO_QUESTION)
    out_dir = resources.settings.data_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    svg = write_chart(chart, out_dir / "demo-chart.svg")
    spec = write_chart(chart, out_dir / "demo-chart.vl.json")
    console.print(f"{chart.type} chart: {chart.reason}")
    console.print(f"Chart written to {svg} (Vega-Lite spec: {spec})")
    console.print(Rule("7. The agent (builtin offline model): a question, then a follow-up"))
    run_agent_demo(resources, console)
    console.print(
        '\nTry: .venv/bin/sqlsage ask "Top 5 products by revenue in 2024"   '
        "or   .venv/bin/sqlsage chat"
    )


AGENT_QUESTIONS = ("What was the total revenue by year?", "and only for 2023?")


def run_agent_demo(resources: Resources, console: Any) -> None:
    """Two turns of one session through the graph, steps streamed as they happen."""
    import asyncio

    from graphs.turns import Turn
    from server.agent_runtime import open_runner
    from server.cli_ask import ask_once

    async def turns() -> None:
        session: str | None = None
        async with open_runner(resources) as runner:
            for question in AGENT_QUESTIONS:
                console.print(f"[bold cyan]you> {question}[/bold cyan]")
                out = await ask_once(
                    runner, Turn(question, session_id=session), as_json=False, console=console
                )
                session = out["session_id"]

    asyncio.run(turns())
