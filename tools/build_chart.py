"""build_chart: pick a Vega-Lite v5 chart by the shape of a query result and render it.

Auto rules, first match wins: no rows -> a "No rows" table; one row of one number -> a big
number; a date column and a measure -> line (a third text column of <= 12 values is the
series); a text column and a measure -> bar sorted by the measure; two measures -> scatter;
anything else -> table. Pie only when asked.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, Field

from tools.chart_columns import ChartColumn, humanize, profile, records
from tools.chart_specs import TABLE_ROWS, pie_spec, table_spec, text_spec, xy_spec
from tools.errors import INVALID_ARGUMENT, RENDER_FAILED, UNKNOWN_FIELD, SqlsageError
from tools.results import QueryResult

ChartType = Literal["bar", "line", "scatter", "pie", "table", "number"]

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
VL_VERSION = "5.21"  # vl-convert wants a bundled minor version; a bare "5" is refused
CHART_TYPES = ("auto", "bar", "line", "scatter", "pie", "table")
SUFFIXES = (".svg", ".png", ".json")
MAX_SERIES = 12  # more colours than this cannot be told apart


class ChartSpec(BaseModel):
    """A chosen chart: its mark, the fields it encodes, the Vega-Lite spec and why."""

    type: ChartType
    x: str | None = None
    y: str | None = None
    color: str | None = None
    spec: dict[str, Any] = Field(description="Vega-Lite v5 spec with the data inline.")
    title: str | None = None
    reason: str = Field(description="One short sentence: why this chart was chosen.")


class _NoFit(Exception):
    """A chart type cannot show these columns; the message says why."""


@dataclass
class _Plan:
    kind: str
    x: ChartColumn | None = None
    y: ChartColumn | None = None
    color: ChartColumn | None = None
    notes: list[str] = field(default_factory=list)
    why: str = ""  # for an auto table: why no chart fits


def _lookup(columns: list[ChartColumn], name: str | None) -> ChartColumn | None:
    """The column called name (exact, else the only case-insensitive match)."""
    if name is None:
        return None
    for col in columns:
        if col.name == name:
            return col
    folded = [c for c in columns if c.name.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    names = [c.name for c in columns]
    hint = f"Available columns: {', '.join(names)}."
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        hint += f" Did you mean '{close[0]}'?"
    raise SqlsageError(UNKNOWN_FIELD, f"Field '{name}' is not a column of the result.", hint=hint)


def _first(columns: list[ChartColumn], role: str, *skip: ChartColumn | None) -> ChartColumn | None:
    return next((c for c in columns if c.role == role and c not in skip), None)


def _resolve(kind: str, columns: list[ChartColumn], given: _Plan, *, strict: bool) -> _Plan:
    """Fill the fields a chart type needs; strict (auto) also refuses columns it would hide."""
    x, y, color = given.x, given.y, given.color
    cats = sorted(
        (c for c in columns if c.role == "category" and c not in (y, color)),
        key=lambda c: -c.distinct,
    )
    if kind == "table":
        return _Plan("table")
    if kind == "scatter":
        x = x or _first(columns, "measure", y)
        y = y or _first(columns, "measure", x)
        if x is None or y is None or x.role != "measure":
            raise _NoFit("it needs two numeric columns for x and y")
    else:
        if x is None:
            prefer = [_first(columns, "temporal"), cats[0] if cats else None]
            candidates = prefer if kind == "line" else prefer[::-1]
            if strict:  # auto draws lines over time and bars over labels only
                candidates = candidates[:1]
            elif len([c for c in columns if c.role == "measure"]) >= 2:
                candidates.append(_first(columns, "measure", y))  # e.g. rating vs count
            x = next((c for c in candidates if c is not None), None)
        if x is None:
            want = "date" if kind == "line" else "category (text)"
            raise _NoFit(f"it needs a {want} column for x")
        y = y or _first(columns, "measure", x)
    if y is None or y.role != "measure":
        got = f"'{y.name}' is {y.role}" if y else "the result has none besides x"
        raise _NoFit(f"it needs a numeric column for y and {got}")
    if kind == "pie" and not y.non_negative:
        raise _NoFit(f"'{y.name}' has negative values and pie slices cannot be negative")
    placed = (x, y)
    if color is None and kind != "pie":
        series = [c for c in cats if c not in placed and c.distinct <= MAX_SERIES]
        color = min(series, key=lambda c: c.distinct) if series else None
    plan = _Plan(kind, x, y, color)
    rest = [c for c in columns if c not in (x, y, color)]
    for col in rest:
        if strict and kind in ("line", "bar") and col.role != "measure":
            # A second label column would put several unlabelled values at one x.
            raise _NoFit(f"{col.describe()} would split the {kind}s into unlabelled groups")
    if rest:
        plan.notes.append("not plotted: " + ", ".join(f"'{c.name}'" for c in rest))
    return plan


def _auto(columns: list[ChartColumn], given: _Plan, row_count: int) -> _Plan:
    """Try the chart types in the order of the auto rules; table when none fits."""
    if given.x is not None:
        kind = {"temporal": "line", "measure": "scatter"}.get(given.x.role, "bar")
        return _resolve(kind, columns, given, strict=False)
    named = given.y is not None or given.color is not None
    if row_count == 1:
        return _Plan("table", why="a single row reads best as a table")
    if len(columns) > 3 and not named:
        return _Plan("table", why=f"{len(columns)} columns fit no chart rule")
    measures = [c for c in columns if c.role == "measure"]
    cats = [c for c in columns if c.role == "category"]
    order = ["line", "bar", "scatter"]
    # Two measures and a label that repeats: groups of points, not one bar per row.
    if len(measures) >= 2 and len(cats) == 1 and cats[0].distinct < row_count:
        order = ["line", "scatter", "bar"] if cats[0].distinct <= MAX_SERIES else order
    for kind in order:
        try:
            return _resolve(kind, columns, given, strict=True)
        except _NoFit:
            continue
    return _Plan("table", why="no chart rule fits " + ", ".join(c.describe() for c in columns))


def _top(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows by a measure, largest first, nulls last."""
    return sorted(rows, key=lambda r: (r[key] is None, -(r[key] or 0)))


def _ascending(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows in time order, nulls last (dates are ISO strings, month numbers ints)."""
    return sorted(rows, key=lambda r: (r[key] is None, r[key] if r[key] is not None else 0))


def _cap(plan: _Plan, data: list[dict[str, Any]], max_points: int) -> list[dict[str, Any]]:
    """At most max_points records: the largest for bars and pies, else the first ones."""
    x, y = cast(ChartColumn, plan.x), cast(ChartColumn, plan.y)
    total = len(data)
    if plan.kind in ("bar", "pie") and x.role == "category":
        data = _top(data, y.name)[:max_points]
        if total > max_points:
            plan.notes.append(f"showing the top {max_points} of {total} by '{y.name}'")
        return data
    data = data[:max_points]
    if total > max_points:
        plan.notes.append(f"showing the first {max_points} of {total} points")
    return _ascending(data, x.name) if x.role == "temporal" else data


def _reason(plan: _Plan, asked: bool) -> str:
    """One sentence: the chart, the columns it uses, and what it leaves out."""
    x, y, c = (col.name if col else "" for col in (plan.x, plan.y, plan.color))
    if plan.kind == "line":
        time = plan.x is not None and plan.x.role == "temporal"
        text = f"Line chart of '{y}' over " + (f"time ('{x}')" if time else f"'{x}'")
        text += f", one line per '{c}'" if c else ""
    elif plan.kind == "bar":
        ranked = plan.x is not None and plan.x.role == "category"
        text = f"Bar chart of '{y}' per '{x}'" + (", largest first" if ranked else "")
        text += f", stacked by '{c}'" if c else ""
    elif plan.kind == "scatter":
        text = f"Scatter plot of '{x}' against '{y}'" + (f", coloured by '{c}'" if c else "")
    elif plan.kind == "pie":
        text = f"Pie chart of '{y}' per '{x}'"
    elif plan.kind == "number":
        text = f"A single number: one row with one numeric column '{y}'"
    else:
        text = "Table" + (f": {plan.why}" if plan.why else "")
    text += " (as asked)" if asked else ""
    return "; ".join([text, *plan.notes]) + "."


def _fits(columns: list[ChartColumn]) -> list[str]:
    fits = []
    for kind in CHART_TYPES[1:]:
        try:
            _resolve(kind, columns, _Plan(kind), strict=False)
            fits.append(kind)
        except _NoFit:
            continue
    return fits


def build_chart(
    result: QueryResult,
    *,
    chart_type: str = "auto",
    x: str | None = None,
    y: str | None = None,
    color: str | None = None,
    title: str | None = None,
    max_points: int = 5000,
) -> ChartSpec:
    """Build a Vega-Lite chart for a query result; 'auto' picks it by column types and values."""
    if chart_type not in CHART_TYPES:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Chart type '{chart_type}' is not supported.",
            hint=f"Use one of: {', '.join(CHART_TYPES)}.",
        )
    if max_points < 1:
        raise SqlsageError(INVALID_ARGUMENT, f"max_points is {max_points}; it must be at least 1.")
    columns = profile(result)
    given = _Plan(chart_type, _lookup(columns, x), _lookup(columns, y), _lookup(columns, color))
    asked = chart_type != "auto"
    data = records(result, columns)
    if not data:
        plan = _Plan("table", why="the query returned no rows")
        spec = text_spec("No rows")
        spec["data"] = {"values": [{}]}  # a mark needs one datum to be drawn
    elif not asked and len(columns) == 1 and len(data) == 1 and columns[0].role == "measure":
        col = columns[0]
        plan = _Plan("number", y=col)
        spec = text_spec("—", humanize(col.name), col if data[0][col.name] is not None else None)
        spec["data"] = {"values": data}
    else:
        if asked:
            try:
                plan = _resolve(chart_type, columns, given, strict=False)
            except _NoFit as exc:
                raise SqlsageError(
                    INVALID_ARGUMENT,
                    f"A {chart_type} chart does not fit this result: {exc}.",
                    hint=f"Columns: {', '.join(c.describe() for c in columns)}. "
                    f"Types that fit: {', '.join(_fits(columns))}.",
                ) from None
        else:
            plan = _auto(columns, given, len(data))
        if plan.kind == "table":
            spec = table_spec([c.name for c in columns], result.rows)
            if len(data) > TABLE_ROWS:
                plan.notes.append(f"showing the first {TABLE_ROWS} of {len(data)} rows")
        else:
            data = _cap(plan, data, max_points)
            x_col, y_col = cast(ChartColumn, plan.x), cast(ChartColumn, plan.y)
            if plan.kind == "pie":
                spec = pie_spec(x_col, y_col)
            else:
                spec = xy_spec(plan.kind, x_col, y_col, plan.color, data, columns)
            spec["data"] = {"values": data}
    if result.truncated:
        plan.notes.append(f"the query result itself was cut at {result.row_count} rows")
    if title:
        spec["title"] = title
    spec = {"$schema": SCHEMA, **spec}
    return ChartSpec(
        type=cast(ChartType, plan.kind),
        x=plan.x.name if plan.x else None,
        y=plan.y.name if plan.y else None,
        color=plan.color.name if plan.color else None,
        spec=spec,
        title=title,
        reason=_reason(plan, asked),
    )


def _render_failed(chart: ChartSpec, exc: BaseException) -> SqlsageError:
    # vl-convert appends a Rust backtrace; the first lines carry the JavaScript error.
    lines = [ln.strip() for ln in str(exc).split("Stack backtrace")[0].splitlines() if ln.strip()]
    detail = " ".join(lines[:2])[:300] or type(exc).__name__
    return SqlsageError(
        RENDER_FAILED,
        f"The {chart.type} chart could not be rendered: {detail}",
        hint="Check the Vega-Lite spec, or write it as .json and render it elsewhere.",
    )


def render_svg(chart: ChartSpec) -> str:
    """Render the chart to an SVG string with the bundled Vega-Lite (no browser, no network)."""
    try:
        import vl_convert  # lazy: loading the renderer costs CLI start-up time

        return str(
            vl_convert.vegalite_to_svg(chart.spec, vl_version=VL_VERSION, allowed_base_urls=[])
        )
    except Exception as exc:
        raise _render_failed(chart, exc) from exc


def render_png(chart: ChartSpec, scale: float = 2.0) -> bytes:
    """Render the chart to PNG bytes; scale 2 gives crisp images on high-density screens."""
    if not 0 < scale <= 8:
        raise SqlsageError(INVALID_ARGUMENT, f"PNG scale is {scale}; use a value in (0, 8].")
    try:
        import vl_convert  # lazy: loading the renderer costs CLI start-up time

        return bytes(
            vl_convert.vegalite_to_png(
                chart.spec, vl_version=VL_VERSION, scale=scale, allowed_base_urls=[]
            )
        )
    except Exception as exc:
        raise _render_failed(chart, exc) from exc


def write_chart(chart: ChartSpec, path: Path) -> Path:
    """Write the chart as SVG, PNG or its Vega-Lite JSON spec, chosen by the file suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Chart file suffix '{path.suffix}' of '{path.name}' is not supported.",
            hint=f"Use one of: {', '.join(SUFFIXES)}.",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".svg":
        path.write_text(render_svg(chart), encoding="utf-8")
    elif suffix == ".png":
        path.write_bytes(render_png(chart))
    else:
        path.write_text(json.dumps(chart.spec, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return path
