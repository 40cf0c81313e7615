"""The MCP server's tools, resources and prompts through the SDK's in-memory client, in both
protocol eras: typed inputs, structured outputs matching their schemas, compact text."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from mcp import Client

from server.mcp_render import MAX_TEXT_BYTES
from server.mcp_toolbox import McpToolbox

from .instant_model import InstantModel
from .mcp_helpers import MODES, text_of, with_mcp

TOOLS = {
    "list_databases",
    "schema_lookup",
    "semantic_search",
    "validate_sql",
    "run_sql",
    "build_chart",
    "ask",
    "add_example",
}


def _structured_ok(tool: Any, result: Any) -> dict[str, Any]:
    """The result is not an error and its structured content matches the tool's outputSchema."""
    assert not result.is_error, text_of(result)
    assert tool.output_schema, f"{tool.name} has no outputSchema"
    jsonschema.validate(result.structured_content, tool.output_schema)
    out: dict[str, Any] = result.structured_content
    return out


@pytest.mark.parametrize("mode", MODES)
def test_tools_have_typed_inputs_outputs_and_annotations(server_dir: Path, mode: str) -> None:
    async def scenario(client: Client, toolbox: McpToolbox) -> dict[str, Any]:
        return {t.name: t for t in (await client.list_tools()).tools}

    tools = with_mcp(server_dir, scenario, mode=mode)
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
        assert tool.annotations is not None and tool.annotations.open_world_hint is False
    for name in TOOLS - {"ask", "add_example"}:
        assert tools[name].annotations.read_only_hint is True, name
        assert tools[name].annotations.idempotent_hint is True, name
    assert tools["add_example"].annotations.read_only_hint is False
    assert tools["add_example"].annotations.destructive_hint is False
    assert tools["ask"].annotations.idempotent_hint is False
    max_rows = tools["run_sql"].input_schema["properties"]["max_rows"]
    bounds = next(s for s in max_rows["anyOf"] if s.get("type") == "integer")
    assert (bounds["minimum"], bounds["maximum"]) == (1, 100_000)
    assert tools["run_sql"].input_schema["required"] == ["sql"]
    detail = tools["schema_lookup"].input_schema["properties"]["detail"]
    assert detail["enum"] == ["names", "summary", "full"]
    assert set(tools["run_sql"].output_schema["properties"]) >= {
        "columns",
        "rows",
        "row_count",
        "truncated",
        "elapsed_ms",
    }


@pytest.mark.parametrize("mode", MODES)
def test_read_tools_return_structured_content_and_compact_text(server_dir: Path, mode: str) -> None:
    async def scenario(client: Client, toolbox: McpToolbox) -> dict[str, Any]:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        out: dict[str, Any] = {}
        for name, args in [
            ("list_databases", {}),
            ("schema_lookup", {"tables": ["customers", "orders"], "detail": "full"}),
            ("semantic_search", {"question": "revenue by region last year", "k": 4}),
            ("validate_sql", {"sql": "SELECT segmnt FROM customers"}),
            (
                "validate_sql",
                {
                    "sql": "SELECT name FROM customers WHERE name ILIKE 'a%'",
                    "from_dialect": "postgres",
                },
            ),
            (
                "run_sql",
                {"sql": "SELECT segment, COUNT(*) AS n FROM customers GROUP BY 1", "max_rows": 2},
            ),
        ]:
            result = await client.call_tool(name, args)
            out.setdefault(name, []).append((_structured_ok(tools[name], result), text_of(result)))
        return out

    out = with_mcp(server_dir, scenario, mode=mode)
    ((dbs, dbs_text),) = out["list_databases"]
    assert dbs["databases"][0]["name"] == "sample" and dbs["databases"][0]["default"] is True
    assert "url" not in json.dumps(dbs).lower() and "sample (sqlite, default)" in dbs_text

    ((schema, schema_text),) = out["schema_lookup"]
    assert [t["name"] for t in schema["tables"]] == ["customers", "orders"]
    assert any(c["name"] == "segment" for c in schema["tables"][0]["columns"])
    assert "CREATE TABLE customers" in schema_text and "text" not in schema

    ((search, search_text),) = out["semantic_search"]
    assert "regions" in search["tables"] and "orders" in search["tables"]
    assert {h["kind"] for h in search["hits"]} & {"table", "column", "glossary", "value"}
    assert "CREATE TABLE" in search_text

    (bad, bad_text), (good, good_text) = out["validate_sql"]
    assert bad["valid"] is False
    error = bad["errors"][0]
    assert (error["code"], error["line"], error["col"]) == ("unknown_column", 1, 8)
    assert error["did_you_mean"] == "segment" and "Did you mean 'segment'?" in bad_text
    assert good["valid"] is True and good["limit_applied"] is True
    assert "LIKE" in good["sql"].upper() and "ILIKE" not in good["sql"].upper()
    assert good["sql"].endswith("LIMIT 1000") and "Valid" in good_text

    ((rows, rows_text),) = out["run_sql"]
    assert rows["columns"] == [
        {"name": "segment", "type": "text"},
        {"name": "n", "type": "integer"},
    ]
    assert rows["row_count"] == 2 and rows["truncated"] is True and len(rows["rows"]) == 2
    assert rows["sql"].endswith("LIMIT 2") and rows["elapsed_ms"] >= 0
    # The text is for the model: fenced rows, counts, and never a dump of the JSON.
    assert "<untrusted-data>" in rows_text and "truncated" in rows_text
    assert '"rows"' not in rows_text


def test_run_sql_text_stays_under_64_kb_whatever_the_page(server_dir: Path) -> None:
    wide = ", ".join(f"hex(randomblob(200)) || name AS c{i}" for i in range(120))

    async def scenario(client: Client, toolbox: McpToolbox) -> list[Any]:
        return [
            await client.call_tool("run_sql", {"sql": sql})
            for sql in (f"SELECT {wide} FROM customers", "SELECT * FROM customers")
        ]

    for result in with_mcp(server_dir, scenario):
        assert not result.is_error, text_of(result)
        text = text_of(result)
        assert len(text.encode()) < 64 * 1024 and len(text.encode()) <= MAX_TEXT_BYTES
        assert text.count("<untrusted-data>") == text.count("</untrusted-data>") == 1
        assert result.structured_content["row_count"] == 1000
        assert result.structured_content["truncated"] is True
        assert len(result.structured_content["rows"]) == 1000


def test_schema_lookup_pages_a_1000_table_schema(tmp_path: Path, server_dir: Path) -> None:
    big = tmp_path / "big.sqlite"
    with sqlite3.connect(big) as conn:
        for i in range(1000):
            cols = ", ".join(f"col_{j} TEXT" for j in range(30))
            conn.execute(f"CREATE TABLE table_{i:04d} (id INTEGER PRIMARY KEY, {cols})")

    async def scenario(client: Client, toolbox: McpToolbox) -> list[Any]:
        return [
            await client.call_tool("schema_lookup", {"db": "big", **args})
            for args in (
                {"detail": "names"},
                {"detail": "names", "offset": 50},
                {"detail": "full"},
                {"pattern": "table_099*", "detail": "summary"},
            )
        ]

    names, second, full, matched = with_mcp(
        server_dir, scenario, databases={"big": {"url": f"sqlite:///{big}"}}
    )
    for result in (names, second, full, matched):
        assert not result.is_error and len(text_of(result).encode()) < 64 * 1024
    assert names.structured_content["total_tables"] == 1000
    assert (
        names.structured_content["next_offset"] == 50
        and len(names.structured_content["tables"]) == 50
    )
    assert second.structured_content["tables"][0]["name"] == "table_0050"
    assert "offset=50" in text_of(names)  # tells the model how to page on
    assert [t["name"] for t in matched.structured_content["tables"]] == [
        f"table_099{i}" for i in range(10)
    ]


def test_build_chart_returns_a_png_and_the_vega_lite_spec(server_dir: Path) -> None:
    async def scenario(client: Client, toolbox: McpToolbox) -> tuple[Any, Any]:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool(
            "build_chart",
            {
                "sql": "SELECT segment, COUNT(*) AS customers FROM customers GROUP BY 1",
                "type": "bar",
                "title": "Customers",
            },
        )
        return tools["build_chart"], result

    tool, result = with_mcp(server_dir, scenario)
    chart = _structured_ok(tool, result)
    assert chart["type"] == "bar" and (chart["x"], chart["y"]) == ("segment", "customers")
    mark = chart["spec"]["mark"]
    assert (mark["type"] if isinstance(mark, dict) else mark) == "bar"
    assert len(chart["spec"]["data"]["values"]) == 3 and chart["spec"]["title"] == "Customers"
    images = [b for b in result.content if b.type == "image"]
    assert len(images) == 1 and images[0].mime_type == "image/png"
    png = base64.b64decode(images[0].data)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    assert "bar chart of 3 row(s)" in text_of(result)


@pytest.mark.parametrize("mode", MODES)
def test_add_example_teaches_the_index(server_dir: Path, mode: str) -> None:
    question = "Which employees were hired in 2023?"
    sql = "SELECT first_name, last_name FROM employees WHERE hire_date LIKE '2023%'"

    async def scenario(client: Client, toolbox: McpToolbox) -> tuple[Any, Any, Any]:
        added = await client.call_tool(
            "add_example", {"question": question, "sql": sql, "db": "sample"}
        )
        found = await client.call_tool(
            "semantic_search", {"question": "employees hired in 2023", "k": 4}
        )
        knowledge = await client.read_resource("knowledge://sample")
        return added, found, knowledge

    added, found, knowledge = with_mcp(server_dir, scenario, mode=mode)
    assert not added.is_error, text_of(added)
    assert added.structured_content["embedded"] >= 1
    saved = Path(added.structured_content["knowledge_file"])
    assert saved.is_relative_to(server_dir) and sql in saved.read_text()
    assert any(
        h["kind"] == "example" and question in h["text"] for h in found.structured_content["hits"]
    )
    payload = json.loads(knowledge.contents[0].text)
    assert any(e["question"] == question for e in payload["examples"])


@pytest.mark.parametrize("mode", MODES)
def test_resources_and_templates(server_dir: Path, mode: str) -> None:
    async def scenario(client: Client, toolbox: McpToolbox) -> dict[str, Any]:
        templates = (await client.list_resource_templates()).resource_templates
        return {
            "templates": sorted(t.uri_template for t in templates),
            "schema": (await client.read_resource("schema://sample")).contents[0],
            "table": (await client.read_resource("schema://sample/customers")).contents[0],
            "knowledge": (await client.read_resource("knowledge://sample")).contents[0],
        }

    out = with_mcp(server_dir, scenario, mode=mode)
    assert out["templates"] == ["knowledge://{db}", "schema://{db}", "schema://{db}/{table}"]
    assert (
        "CREATE TABLE orders" in out["schema"].text and "CREATE TABLE regions" in out["schema"].text
    )
    table = out["table"].text
    assert "CREATE TABLE customers" in table and "CREATE TABLE orders" not in table
    knowledge = json.loads(out["knowledge"].text)
    assert knowledge["database"] == "sample"
    assert any(term["term"] == "revenue" for term in knowledge["glossary"])


@pytest.mark.parametrize("mode", MODES)
def test_prompts_guide_search_validate_run_chart(server_dir: Path, mode: str) -> None:
    async def scenario(client: Client, toolbox: McpToolbox) -> tuple[list[str], str, str]:
        names = sorted(p.name for p in (await client.list_prompts()).prompts)
        answer = await client.get_prompt(
            "answer-question", {"question": "Top 5 products by revenue?", "db": "sample"}
        )
        explore = await client.get_prompt("explore-database", {})
        return names, answer.messages[0].content.text, explore.messages[0].content.text

    names, answer, explore = with_mcp(server_dir, scenario, mode=mode)
    assert names == ["answer-question", "explore-database"]
    assert "Top 5 products by revenue?" in answer and "'sample'" in answer
    order = [
        answer.index(step) for step in ("semantic_search", "validate_sql", "run_sql", "build_chart")
    ]
    assert order == sorted(order)
    assert "schema_lookup" in explore and "knowledge://" in explore


@pytest.mark.parametrize("mode", MODES)
def test_ask_runs_the_agent_with_progress_and_follow_ups(
    server_dir: Path, instant: InstantModel, mode: str
) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async def scenario(client: Client, toolbox: McpToolbox) -> tuple[Any, Any, Any]:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        first = await client.call_tool(
            "ask", {"question": "How many customers per segment?"}, progress_callback=on_progress
        )
        _structured_ok(tools["ask"], first)
        follow = await client.call_tool(
            "ask",
            {
                "question": "and as a bar chart?",
                "session_id": first.structured_content["session_id"],
            },
        )
        return tools["ask"], first, follow

    tool, first, follow = with_mcp(server_dir, scenario, mode=mode, model=instant)
    out = first.structured_content
    assert out["status"] == "answered" and out["turn"] == 1
    assert out["sql"].startswith("SELECT segment, COUNT(*) AS customers")
    assert out["columns"][0]["name"] == "segment" and out["row_count"] == 3
    assert out["chart"] is not None and out["usage"]["input_tokens"] > 0
    assert [s["name"] for s in out["steps"] if s["name"] != "agent"][:3] == [
        "retrieve",
        "semantic_search",
        "run_sql",
    ]
    assert any(b.type == "image" for b in first.content)
    assert "SQL: SELECT segment" in text_of(first) and out["session_id"] in text_of(first)
    # Progress at each step, increasing, with what happened.
    values = [v for v, _ in progress]
    assert len(progress) >= 5 and values == sorted(values) and len(set(values)) == len(values)
    assert any(m and m.startswith("run_sql") for _, m in progress)
    again = _structured_ok(tool, follow)
    assert again["session_id"] == out["session_id"] and again["turn"] == 2
