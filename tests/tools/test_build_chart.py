"""build_chart: auto rules on realistic small results, explicit types, errors, real rendering."""

from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tools.build_chart import ChartSpec, build_chart, render_png, render_svg, write_chart
from tools.chart_columns import humanize
from tools.errors import INVALID_ARGUMENT, RENDER_FAILED, UNKNOWN_FIELD, SqlsageError
from tools.results import Column, QueryResult


def result(columns: list[tuple[str, str]], rows: list[list[Any]], **kw: Any) -> QueryResult:
    """A QueryResult as run_sql would return it."""
    return QueryResult(
        columns=[Column(name=n, type=t) for n, t in columns],
        rows=rows,
        row_count=len(rows),
        truncated=kw.get("truncated", False),
        elapsed_ms=3.2,
        sql="SELECT ...",
        dialect="sqlite",
        database="sample",
    )


GENRES = result(
    [("genre", "text"), ("total_revenue", "number")],
    [["Rock", 826.65], ["Latin", 382.14], ["Metal", 261.36], ["Jazz", 79.2], ["Blues", 60.39]],
)
MONTHLY = result(  # SQLite strftime('%Y-%m'): dates as TEXT, rows not in time order
    [("month", "text"), ("region", "text"), ("revenue", "number")],
    random.Random(7).sample(
        [
            [f"2024-{m:02d}", r, 100.0 * m + (40 if r == "EU" else 0)]
            for m in range(1, 13)
            for r in ("EU", "US")
        ],
        24,
    ),
)
COUNTRIES = result(
    [("country", "text"), ("customers", "integer")],
    [
        [c, 20 - i]
        for i, c in enumerate(
            [
                "USA",
                "Canada",
                "France",
                "Brazil",
                "Germany",
                "UK",
                "Portugal",
                "India",
                "Chile",
                "Italy",
                "Spain",
                "Sweden",
            ]
        )
    ],
)
PRICES = result(
    [("unit_price", "number"), ("quantity", "integer"), ("media_type", "text")],
    [[0.99 + i * 0.25, 30 - i, ["MPEG", "AAC"][i % 2]] for i in range(20)],
)
TOTAL = result([("total_revenue", "number")], [[2328.6]])
EMPTY = result([("name", "text"), ("total", "number")], [])
PEOPLE = result(
    [("first_name", "text"), ("last_name", "text"), ("email", "text")],
    [["Luís", "Gonçalves", "luisg@embraer.com.br"], ["Leonie", "Köhler", "leonekohler@surfeu.de"]],
)


def svg_texts(svg: str) -> list[str]:
    """Every text in an SVG (axis titles, labels), parsed as XML."""
    root = ET.fromstring(svg)
    return [el.text or "" for el in root.iter() if el.tag.endswith("text")]


# --- auto rules ---------------------------------------------------------------------------


def test_no_rows_is_a_table_saying_no_rows() -> None:
    chart = build_chart(EMPTY)
    assert chart.type == "table"
    assert "No rows" in json.dumps(chart.spec)
    assert "no rows" in chart.reason


def test_one_number_is_a_big_number_with_the_column_as_subtitle() -> None:
    chart = build_chart(TOTAL)
    assert (chart.type, chart.y) == ("number", "total_revenue")
    texts = [layer["encoding"]["text"] for layer in chart.spec["layer"]]
    assert texts[0]["format"] == ",.2f"
    assert texts[1] == {"value": "Total revenue"}


def test_text_dates_and_a_measure_make_a_time_sorted_line_with_series() -> None:
    chart = build_chart(MONTHLY)
    assert (chart.type, chart.x, chart.y, chart.color) == ("line", "month", "revenue", "region")
    x = chart.spec["encoding"]["x"]
    assert (x["type"], x["timeUnit"], x["axis"]["format"]) == ("temporal", "utcyearmonth", "%b %Y")
    months = [r["month"] for r in chart.spec["data"]["values"]]
    assert months == sorted(months) and months[0] == "2024-01-01"
    assert chart.spec["$schema"] == "https://vega.github.io/schema/vega-lite/v5.json"


@pytest.mark.parametrize(
    ("column", "values", "unit", "first"),
    [
        (("order_date", "date"), ["2024-03-02", "2024-03-01"], "utcyearmonthdate", "2024-03-01"),
        (("day", "text"), ["2024-03-01", "2024-03-02"], "utcyearmonthdate", "2024-03-01"),
        (
            ("ts", "text"),
            ["2024-03-01 10:30:00", "2024-03-01 09:00:00"],
            "utcyearmonthdatehoursminutes",
            "2024-03-01T09:00:00Z",
        ),
        (("year", "integer"), [2021, 2019, 2020], "utcyear", "2019-01-01"),
        (("order_year", "text"), ["2019", "2020"], "utcyear", "2019-01-01"),  # strftime('%Y')
    ],
)
def test_temporal_columns_by_type_name_and_values(
    column: tuple[str, str], values: list[Any], unit: str, first: str
) -> None:
    chart = build_chart(result([column, ("orders", "integer")], [[v, 10] for v in values]))
    assert chart.type == "line"
    assert chart.spec["encoding"]["x"]["timeUnit"] == unit
    assert chart.spec["data"]["values"][0][column[0]] == first


def test_month_numbers_are_an_ordered_axis() -> None:
    chart = build_chart(
        result([("month", "integer"), ("sales", "number")], [[m, m * 1.5] for m in (3, 1, 2)])
    )
    assert chart.type == "line"
    assert chart.spec["encoding"]["x"]["type"] == "ordinal"
    assert [r["month"] for r in chart.spec["data"]["values"]] == [1, 2, 3]


def test_too_many_series_for_a_line_falls_back_to_table() -> None:
    rows = [["2024-01", f"store {i}", i] for i in range(13)]
    chart = build_chart(result([("month", "text"), ("store", "text"), ("sales", "integer")], rows))
    assert chart.type == "table"
    assert "'store'" in chart.reason


def test_category_and_measure_make_bars_sorted_by_the_measure() -> None:
    chart = build_chart(GENRES, title="Revenue by genre")
    assert (chart.type, chart.x, chart.y) == ("bar", "genre", "total_revenue")
    enc = chart.spec["encoding"]
    assert enc["x"]["field"] == "genre" and enc["x"]["sort"] == "-y"  # vertical: short labels
    assert enc["y"]["title"] == "Total revenue" and enc["y"]["axis"]["format"] == ",.2~f"
    revenue = [r["total_revenue"] for r in chart.spec["data"]["values"]]
    assert revenue == sorted(revenue, reverse=True)
    assert chart.spec["title"] == chart.title == "Revenue by genre"
    assert (chart.spec["width"], chart.spec["height"]) == (600, 320)


def test_many_or_long_categories_make_horizontal_bars() -> None:
    enc = build_chart(COUNTRIES).spec["encoding"]
    assert enc["y"]["field"] == "country" and enc["y"]["sort"] == "-x"
    assert enc["x"]["axis"]["format"] == ",.0~f"  # integers
    long = result(
        [("album", "text"), ("tracks", "integer")],
        [["Battlestar Galactica (Classic), Season 1", 24], ["Lost, Season 3", 26]],
    )
    assert build_chart(long).spec["encoding"]["y"]["field"] == "album"


def test_bars_keep_the_top_max_points_and_say_so() -> None:
    chart = build_chart(GENRES, max_points=3)
    assert [r["genre"] for r in chart.spec["data"]["values"]] == ["Rock", "Latin", "Metal"]
    assert "top 3 of 5" in chart.reason


def test_lines_keep_the_first_max_points_and_say_so() -> None:
    chart = build_chart(
        result(
            [("day", "text"), ("visits", "integer")],
            [[f"2024-01-{d:02d}", d] for d in range(1, 31)],
        ),
        max_points=10,
    )
    assert len(chart.spec["data"]["values"]) == 10
    assert "first 10 of 30" in chart.reason


def test_two_measures_make_a_scatter_coloured_by_a_text_column() -> None:
    chart = build_chart(PRICES)
    assert (chart.type, chart.x, chart.y, chart.color) == (
        "scatter",
        "unit_price",
        "quantity",
        "media_type",
    )
    assert chart.spec["encoding"]["x"]["scale"] == {"zero": False}


def test_id_columns_are_labels_not_measures() -> None:
    chart = build_chart(
        result(
            [("CustomerId", "integer"), ("Total", "number")], [[1, 39.62], [2, 37.62], [3, 45.62]]
        )
    )
    assert (chart.type, chart.x) == ("bar", "CustomerId")


@pytest.mark.parametrize(
    ("res", "why"),
    [
        (PEOPLE, "no chart rule fits"),
        (result([(c, "integer") for c in "abcd"], [[1, 2, 3, 4], [5, 6, 7, 8]]), "4 columns"),
        (result([("genre", "text"), ("n", "integer")], [["Rock", 3]]), "single row"),
    ],
)
def test_results_that_fit_no_rule_are_tables(res: QueryResult, why: str) -> None:
    chart = build_chart(res)
    assert chart.type == "table" and why in chart.reason


def test_rates_within_0_1_are_percentages() -> None:
    rates = result(
        [("channel", "text"), ("conversion_rate", "number")], [["web", 0.031], ["app", 0.052]]
    )
    assert build_chart(rates).spec["encoding"]["y"]["axis"]["format"] == ".1~%"
    # 'generated' contains 'rate' but is not a rate; 7.5 is not within 0..1.
    other = result([("generated", "text"), ("rate_pct", "number")], [["a", 7.5], ["b", 2.0]])
    assert build_chart(other).spec["encoding"]["y"]["axis"]["format"] == ",.2~f"


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("total_revenue", "Total revenue"),
        ("InvoiceDate", "Invoice date"),
        ("GDP_usd", "GDP usd"),
        ("TOTAL_SALES", "Total sales"),
        ("SUM(i.total)", "SUM(i.total)"),
    ],
)
def test_humanize(name: str, title: str) -> None:
    assert humanize(name) == title


def test_truncated_results_and_unplotted_columns_are_in_the_reason() -> None:
    res = result(
        [("genre", "text"), ("revenue", "number"), ("tracks", "integer")],
        [["Rock", 826.6, 1297], ["Jazz", 79.2, 130]],
        truncated=True,
    )
    chart = build_chart(res)
    assert chart.type == "bar"
    assert "'tracks'" in chart.reason and "cut at 2 rows" in chart.reason


def test_decimal_strings_become_numbers_and_nan_becomes_null() -> None:
    res = result([("genre", "text"), ("revenue", "number")], [["Rock", "12.50"], ["Jazz", "NaN"]])
    values = build_chart(res).spec["data"]["values"]
    assert values == [{"genre": "Rock", "revenue": 12.5}, {"genre": "Jazz", "revenue": None}]


# --- explicit types and fields ------------------------------------------------------------


def test_explicit_fields_and_types() -> None:
    bar = build_chart(MONTHLY, chart_type="bar", x="region", y="revenue")
    assert (bar.type, bar.x, bar.y) == ("bar", "region", "revenue")
    assert "as asked" in bar.reason
    line = build_chart(GENRES, chart_type="line")
    assert (line.type, line.x, line.spec["encoding"]["x"]["type"]) == ("line", "genre", "nominal")
    pie = build_chart(GENRES, chart_type="pie")
    assert pie.type == "pie" and pie.spec["mark"]["type"] == "arc"
    assert pie.spec["encoding"]["theta"]["field"] == "total_revenue"
    assert build_chart(MONTHLY, chart_type="table").type == "table"
    hist = result([("rating", "integer"), ("reviews", "integer")], [[1, 4], [2, 9], [3, 30]])
    assert build_chart(hist, chart_type="bar").x == "rating"


def test_auto_with_x_or_y_given_follows_their_roles() -> None:
    assert build_chart(PRICES, x="media_type").type == "bar"
    assert build_chart(MONTHLY, x="month", y="revenue", color="region").type == "line"
    assert build_chart(GENRES, x="Total_Revenue", y="total_revenue").type == "scatter"


@pytest.mark.parametrize("arg", ["x", "y", "color"])
def test_unknown_field_quotes_the_name_and_lists_columns(arg: str) -> None:
    with pytest.raises(SqlsageError) as info:
        build_chart(MONTHLY, **{arg: "revnue"})
    err = info.value
    assert err.code == UNKNOWN_FIELD
    assert err.message == "Field 'revnue' is not a column of the result."
    assert err.hint is not None
    assert "month, region, revenue" in err.hint and "Did you mean 'revenue'?" in err.hint


@pytest.mark.parametrize(
    ("res", "kind", "fits"),
    [
        (PEOPLE, "line", "Types that fit: table."),
        (PEOPLE, "scatter", "table"),
        (GENRES, "scatter", "bar, line, pie, table"),
        (
            result([("team", "text"), ("margin", "number")], [["a", -2.0], ["b", 3.0]]),
            "pie",
            "bar, line, table",
        ),
    ],
)
def test_a_type_that_does_not_fit_says_why_and_what_fits(
    res: QueryResult, kind: str, fits: str
) -> None:
    with pytest.raises(SqlsageError) as info:
        build_chart(res, chart_type=kind)
    assert info.value.code == INVALID_ARGUMENT
    assert f"A {kind} chart does not fit" in info.value.message
    assert info.value.hint is not None and fits in info.value.hint


def test_a_text_y_is_refused() -> None:
    with pytest.raises(SqlsageError, match="'region' is category") as info:
        build_chart(MONTHLY, chart_type="bar", y="region")
    assert info.value.code == INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"chart_type": "donut"}, ["'donut'", "auto, bar, line, scatter, pie, table"]),
        ({"max_points": 0}, ["max_points is 0", "at least 1"]),
    ],
)
def test_bad_arguments(kw: dict[str, Any], says: list[str]) -> None:
    with pytest.raises(SqlsageError) as info:
        build_chart(GENRES, **kw)
    assert info.value.code == INVALID_ARGUMENT
    assert all(part in str(info.value) for part in says)


# --- rendering ----------------------------------------------------------------------------

CASES = {
    "bar": GENRES,
    "hbar": COUNTRIES,
    "line": MONTHLY,
    "scatter": PRICES,
    "number": TOTAL,
    "empty": EMPTY,
    "table": PEOPLE,
    "dotted": result([("c.name", "text"), ("SUM(i.total)", "number")], [["a", 1.0], ["b", 2.5]]),
}


def test_every_auto_chart_is_json_safe_and_renders() -> None:
    charts = [build_chart(res) for res in CASES.values()]
    charts.append(build_chart(GENRES, chart_type="pie"))
    for chart in charts:
        json.dumps(chart.spec, allow_nan=False)
        texts = svg_texts(render_svg(chart))
        assert texts, chart.type
    assert "SUM(i.total)" in svg_texts(render_svg(build_chart(CASES["dotted"])))


def test_svg_has_the_axis_titles_and_labels() -> None:
    svg = render_svg(build_chart(GENRES, title="Revenue by genre"))
    assert "<svg" in svg
    texts = svg_texts(svg)
    assert {"Total revenue", "Genre", "Rock", "Revenue by genre"} <= set(texts)


def test_png_has_the_magic_bytes_and_a_plausible_size() -> None:
    png = render_png(build_chart(MONTHLY), scale=2.0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert 1200 <= width <= 1600 and 640 <= height <= 900
    assert 10_000 < len(png) < 2_000_000


def test_render_failure_is_render_failed() -> None:
    broken = ChartSpec(type="bar", spec={"mark": "nonsense"}, reason="broken on purpose")
    with pytest.raises(SqlsageError) as info:
        render_svg(broken)
    assert info.value.code == RENDER_FAILED
    assert "Stack backtrace" not in info.value.message


def test_renderer_fetches_nothing() -> None:
    remote = ChartSpec(
        type="bar",
        reason="remote data",
        spec={"data": {"url": "https://example.com/x.json"}, "mark": "bar"},
    )
    with pytest.raises(SqlsageError) as info:
        render_svg(remote)
    assert info.value.code == RENDER_FAILED


@pytest.mark.parametrize("suffix", [".svg", ".png", ".json"])
def test_write_chart_by_suffix(tmp_path: Path, suffix: str) -> None:
    chart = build_chart(GENRES)
    path = write_chart(chart, tmp_path / "out" / f"genres{suffix}")
    data = path.read_bytes()
    if suffix == ".svg":
        assert "Total revenue" in svg_texts(data.decode())
    elif suffix == ".png":
        assert data.startswith(b"\x89PNG")
    else:
        assert json.loads(data) == chart.spec


def test_write_chart_refuses_other_suffixes(tmp_path: Path) -> None:
    with pytest.raises(SqlsageError) as info:
        write_chart(build_chart(GENRES), tmp_path / "chart.pdf")
    assert info.value.code == INVALID_ARGUMENT
    assert "'.pdf'" in info.value.message
    assert info.value.hint == "Use one of: .svg, .png, .json."
    assert not (tmp_path / "chart.pdf").exists()


def test_dates_do_not_shift_in_a_western_time_zone() -> None:
    # The renderer formats in its local zone; a UTC-parsed date shown in local units would
    # label 2024-01-01 as Dec 2023 in New York. The spec uses UTC units everywhere.
    script = (
        "import json, sys; from tools.build_chart import ChartSpec, render_svg;"
        "print(render_svg(ChartSpec.model_validate_json(sys.stdin.read())))"
    )
    chart = build_chart(MONTHLY)
    svg = subprocess.run(
        [sys.executable, "-c", script],
        input=chart.model_dump_json(),
        capture_output=True,
        text=True,
        check=True,
        env={"TZ": "America/New_York", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    ).stdout
    assert "Jan 2024" in svg_texts(svg) and "Dec 2023" not in svg_texts(svg)
