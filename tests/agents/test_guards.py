"""What the model is shown and held to: the untrusted-data fence, the number check, the tool
registry's schemas and argument errors."""

from __future__ import annotations

import pytest

from agents.answer_check import invented_numbers, numbers_in
from agents.previews import DATA_NOTE, FENCE_CLOSE, FENCE_OPEN, PREVIEW_ROWS, preview
from tools.errors import INVALID_ARGUMENT, SqlsageError
from tools.registry import TOOLS, tool_schemas, tool_spec
from tools.results import Column, QueryResult


def _result(rows: list[list[object]], *, truncated: bool = False) -> QueryResult:
    return QueryResult(
        columns=[Column(name="name", type="text"), Column(name="total", type="number")],
        rows=rows,
        row_count=len(rows),
        truncated=truncated,
        elapsed_ms=1.0,
    )


def test_preview_is_bounded_fenced_and_summarized() -> None:
    rows = [[f"row {i}", i * 1.5] for i in range(50)]
    text = preview(_result(rows, truncated=True), ref="s:1:1")
    assert text.startswith("Query ran: more than 50 row(s); first 20 shown; result_ref s:1:1.")
    body = text[text.index(FENCE_OPEN) : text.index(FENCE_CLOSE)]
    assert body.count("\n") == 2 + PREVIEW_ROWS  # the fence line, the header, 20 rows
    assert "row 19\t28.5" in body and "row 20" not in body
    assert "- total (number): min 0, max 73.5, 0 null" in text  # stats over the page
    assert text.endswith(DATA_NOTE)


def test_preview_cells_are_one_line_and_capped() -> None:
    text = preview(_result([["a\tb\nc" + "x" * 200, None]]))
    line = text.splitlines()[3]
    assert line.startswith("a b c") and line.endswith("…\tNULL") and len(line) < 100


@pytest.mark.parametrize(
    "figure",
    ["1,234", "1234.5", "-3", "98,765.43"],
    ids=["thousands", "decimal", "negative", "both"],
)
def test_numbers_are_read_as_written(figure: str) -> None:
    assert numbers_in(f"about {figure} units") == [figure]


def test_figures_must_come_from_the_sources() -> None:
    sources = [1234.5678, 42, "SELECT ... WHERE year = 2023", 7]
    assert invented_numbers("Revenue was 1,234.57 in 2023 across 42 orders.", sources=sources) == []
    assert invented_numbers("Revenue was 1,234.6.", sources=sources) == []  # rounding it used
    assert invented_numbers("Revenue was 9,999.", sources=sources) == ["9,999"]
    assert invented_numbers("There were 5 orders.", sources=sources) == ["5"]
    assert invented_numbers("No rows, 1 table.", sources=[]) == []  # 0 and 1 count nothing


def test_registry_gives_five_tools_with_schemas_from_their_arguments() -> None:
    schemas = tool_schemas()
    assert [s["function"]["name"] for s in schemas] == list(TOOLS) == [
        "semantic_search", "schema_lookup", "validate_sql", "run_sql", "build_chart",
    ]  # fmt: skip
    run = schemas[3]["function"]
    assert run["parameters"]["required"] == ["sql"] and "read-only" in run["description"]
    schemas[0]["function"]["name"] = "changed"  # a copy: the registry is not touched
    assert tool_schemas()[0]["function"]["name"] == "semantic_search"


@pytest.mark.parametrize(
    ("name", "args", "needle"),
    [
        ("run_sql", {}, "sql: Field required"),
        ("run_sql", {"sql": "SELECT 1", "drop": True}, "drop: Extra inputs are not permitted"),
        (
            "semantic_search",
            {"question": "q", "k": 0},
            "k: Input should be greater than or equal to 1",
        ),
        ("build_chart", {"chart_type": "radar"}, "chart_type: Input should be"),
    ],
    ids=["missing", "extra", "range", "choice"],
)
def test_bad_tool_arguments_say_what_to_send(
    name: str, args: dict[str, object], needle: str
) -> None:
    with pytest.raises(SqlsageError) as info:
        tool_spec(name).parse(args)
    assert info.value.code == INVALID_ARGUMENT and needle in info.value.message
    assert info.value.hint and name in info.value.hint


def test_unknown_tool_lists_the_real_ones() -> None:
    with pytest.raises(SqlsageError) as info:
        tool_spec("drop_table")
    assert "'drop_table'" in info.value.message and "run_sql" in (info.value.hint or "")
