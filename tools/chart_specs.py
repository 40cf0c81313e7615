"""Vega-Lite v5 specs for each chart type, built from profiled result columns."""

from __future__ import annotations

import json
from typing import Any

from tools.chart_columns import TIME_UNITS, ChartColumn, humanize

WIDTH, HEIGHT = 600, 320
MAX_VERTICAL_BARS = 10
LONG_LABEL = 12  # characters; longer labels collide under vertical bars
TABLE_ROWS = 50  # a taller text table is unreadable as an image
POINT_MARKERS = 60  # up to this many points a line also marks each point


def ref(name: str) -> str:
    """A field reference: Vega-Lite reads dots and brackets in names as paths."""
    for char in ("\\", ".", "[", "]"):
        name = name.replace(char, "\\" + char)
    return name


def _axis_format(fmt: str) -> str:
    return fmt[:-1] + "~" + fmt[-1]  # '~' trims zeros: ticks read 5,000 not 5,000.00


def _encode(col: ChartColumn, kind: str, *, axis: bool = True) -> dict[str, Any]:
    """A positional (or colour) encoding for a column by its role."""
    enc: dict[str, Any] = {"field": ref(col.name), "title": humanize(col.name)}
    if col.role == "temporal" and col.unit in TIME_UNITS:
        unit, fmt = TIME_UNITS[col.unit]
        enc |= {"type": "temporal", "timeUnit": unit}
        enc["axis" if axis else "legend"] = {"format": fmt}
    elif col.role == "measure" and (kind in ("line", "scatter") or axis is False):
        enc |= {"type": "quantitative"}
        enc["axis" if axis else "legend"] = {"format": _axis_format(col.fmt)}
        if kind == "scatter":
            enc["scale"] = {"zero": False}
    else:
        enc["type"] = "nominal" if col.role == "category" else "ordinal"
    return enc


def _measure(col: ChartColumn) -> dict[str, Any]:
    return {
        "field": ref(col.name),
        "type": "quantitative",
        "title": humanize(col.name),
        "axis": {"format": _axis_format(col.fmt)},
    }


def _tooltip(columns: list[ChartColumn]) -> list[dict[str, Any]]:
    tips = []
    for col in columns[:8]:
        tip: dict[str, Any] = {"field": ref(col.name), "title": humanize(col.name)}
        if col.role == "measure":
            tip |= {"type": "quantitative", "format": col.fmt}
        elif col.role == "temporal" and col.unit in TIME_UNITS:
            tip |= {"type": "temporal", "timeUnit": TIME_UNITS[col.unit][0]}
        else:
            tip["type"] = "nominal"
        tips.append(tip)
    return tips


def xy_spec(
    kind: str,
    x: ChartColumn,
    y: ChartColumn,
    color: ChartColumn | None,
    data: list[dict[str, Any]],
    columns: list[ChartColumn],
) -> dict[str, Any]:
    """A bar, line or scatter spec (without data); data is already capped and ordered."""
    x_enc, y_enc = _encode(x, kind), _measure(y)
    if kind == "scatter":
        y_enc = _encode(y, "scatter")
    encoding: dict[str, Any] = {"x": x_enc, "y": y_enc}
    spec: dict[str, Any] = {"width": WIDTH, "height": HEIGHT}
    if kind == "line":
        spec["mark"] = {"type": "line", "point": len(data) <= POINT_MARKERS}
    elif kind == "scatter":
        spec["mark"] = {"type": "circle", "size": 60, "opacity": 0.75}
    else:
        spec["mark"] = {"type": "bar"}
        if x.role == "category":
            labels = len({json.dumps(r[x.name], default=str) for r in data})
            if labels > MAX_VERTICAL_BARS or x.label_len > LONG_LABEL:
                encoding = {"x": y_enc, "y": x_enc}
                x_enc |= {"sort": "-x", "axis": {"labelLimit": 240}}
                spec["height"] = HEIGHT if labels * 20 <= HEIGHT else {"step": 20}
            else:
                x_enc |= {"sort": "-y", "axis": {"labelAngle": 0}}
    if color is not None:
        encoding["color"] = _encode(color, kind, axis=False)
    encoding["tooltip"] = _tooltip(
        [c for c in (x, y, color) if c] + [c for c in columns if c not in (x, y, color)]
    )
    spec["encoding"] = encoding
    return spec


def pie_spec(x: ChartColumn, y: ChartColumn) -> dict[str, Any]:
    """A pie of measure y per category x, largest slice first (without data)."""
    return {
        "width": HEIGHT,
        "height": HEIGHT,
        "mark": {"type": "arc"},
        "encoding": {
            "theta": {"field": ref(y.name), "type": "quantitative", "stack": True},
            "color": {
                "field": ref(x.name),
                "type": "nominal",
                "title": humanize(x.name),
                "sort": {"field": ref(y.name), "order": "descending"},
            },
            "order": {"field": ref(y.name), "type": "quantitative", "sort": "descending"},
            "tooltip": _tooltip([x, y]),
        },
        "view": {"stroke": None},
    }


def _cell(value: Any) -> str:
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:39] + "…"


def table_spec(names: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """A text table of the first TABLE_ROWS rows: columns folded into (column, value) cells."""
    values = [
        {name: _cell(v) for name, v in zip(names, row, strict=True)} for row in rows[:TABLE_ROWS]
    ]
    return {
        "width": {"step": 150},
        "height": {"step": 20},
        "data": {"values": values},
        "transform": [
            {"window": [{"op": "row_number", "as": "_row"}]},
            {"fold": [ref(n) for n in names], "as": ["_column", "_value"]},
        ],
        "mark": {"type": "text", "align": "left", "limit": 140},
        "encoding": {
            "x": {
                "field": "_column",
                "type": "nominal",
                "sort": None,
                "axis": {
                    "orient": "top",
                    "title": None,
                    "labelAngle": 0,
                    "domain": False,
                    "ticks": False,
                    "labelAlign": "left",
                    "labelFontWeight": "bold",
                },
            },
            "y": {"field": "_row", "type": "ordinal", "axis": None},
            "text": {"field": "_value"},
        },
        "view": {"stroke": None},
    }


def text_spec(
    text: str,
    subtitle: str | None = None,
    value: ChartColumn | None = None,
) -> dict[str, Any]:
    """A big centred text (a single number, or 'No rows') with an optional caption below."""
    big: dict[str, Any] = {"value": text}
    if value is not None:
        big = {"field": ref(value.name), "type": "quantitative", "format": value.fmt}
    layer: list[dict[str, Any]] = [
        {
            "mark": {
                "type": "text",
                "fontSize": 56 if value else 20,
                "fontWeight": "bold",
                "baseline": "middle",
                "color": "#222" if value else "#888",
            },
            "encoding": {"text": big},
        }
    ]
    if subtitle:
        layer.append(
            {
                "mark": {"type": "text", "fontSize": 16, "dy": 48, "color": "#666"},
                "encoding": {"text": {"value": subtitle}},
            }
        )
    return {"width": WIDTH, "height": 160, "layer": layer, "view": {"stroke": None}}
