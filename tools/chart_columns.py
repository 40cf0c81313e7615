"""What each result column is good for on a chart: a time axis, a measure or a category."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from tools.results import QueryResult

# Vega-Lite time unit and axis format per grain. UTC units: the spec's date strings are
# wall-clock values, and a local unit would shift them by the renderer's time zone.
TIME_UNITS = {
    "year": ("utcyear", "%Y"),
    "month": ("utcyearmonth", "%b %Y"),
    "date": ("utcyearmonthdate", "%b %d, %Y"),
    "minute": ("utcyearmonthdatehoursminutes", "%b %d, %H:%M"),
    "second": ("utcyearmonthdatehoursminutesseconds", "%b %d, %H:%M:%S"),
}
_YEAR_MONTH = re.compile(r"\d{4}-\d{2}")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_PERCENT_WORDS = {"pct", "percent", "percentage", "rate", "share", "ratio"}
_ID_WORDS = {"id", "code"}


@dataclass(frozen=True)
class ChartColumn:
    """One result column as a chart sees it."""

    name: str
    index: int
    role: str  # "temporal", "measure" or "category"
    type: str  # the normalized column type from run_sql
    unit: str = ""  # temporal grain: a TIME_UNITS key, or "month_number" for 1..12
    fmt: str = ""  # d3 format of a measure
    distinct: int = 0
    label_len: int = 0
    non_negative: bool = True

    def describe(self) -> str:
        """'name (role)' for messages."""
        return f"'{self.name}' ({self.role})"


def words(name: str) -> list[str]:
    """Lower-case words of a snake_case or camelCase name."""
    return [w.lower() for w in _WORD.findall(name)]


def humanize(name: str) -> str:
    """An axis title from a column name: 'total_revenue' -> 'Total revenue'."""
    if not re.fullmatch(r"[A-Za-z0-9_\- ]+", name):
        return name  # expressions such as SUM(total) read best as written
    if name.isupper():
        name = name.lower()
    parts = [p if p.isupper() and len(p) > 1 else p.lower() for p in _WORD.findall(name)]
    text = " ".join(parts) or name
    return text[:1].upper() + text[1:]


def as_datetime(value: Any) -> datetime | None:
    """Parse 'YYYY-MM', 'YYYY-MM-DD' or an ISO datetime string; None when it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _YEAR_MONTH.fullmatch(text):
            return datetime(int(text[:4]), int(text[5:]), 1)
        if _ISO.fullmatch(text):
            return datetime.fromisoformat(text)
    except ValueError:  # shaped like a date but not one, e.g. month 13
        return None
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _grain(stamps: list[datetime]) -> str:
    if all(s.time() == time(0) and s.tzinfo is None for s in stamps):
        if all(s.day == 1 for s in stamps):
            return "year" if all(s.month == 1 for s in stamps) else "month"
        return "date"
    return "minute" if all(s.second == 0 and s.microsecond == 0 for s in stamps) else "second"


def temporal_unit(name: str, col_type: str, values: list[Any]) -> str:
    """The time grain of a column holding dates or years, or '' when it holds none."""
    if not values:
        return "date" if col_type in ("date", "datetime") else ""
    ints = [_as_int(v) for v in values]
    if all(i is not None for i in ints):
        named = set(words(name))
        if named & {"year", "yr"} and all(1900 <= i <= 2100 for i in ints if i is not None):
            return "year"
        if "month" in named and all(1 <= i <= 12 for i in ints if i is not None):
            return "month_number"
        return ""
    if col_type not in ("text", "date", "datetime", "unknown"):
        return ""
    stamps = [as_datetime(v) for v in values]
    if any(s is None for s in stamps):
        return ""
    if all(isinstance(v, str) and _YEAR_MONTH.fullmatch(v.strip()) for v in values):
        return "month"  # 'YYYY-MM' says month even when every value is January
    return _grain([s for s in stamps if s is not None])


def temporal_value(value: Any, unit: str) -> Any:
    """A temporal value as Vega parses it the same in every time zone (UTC wall clock)."""
    if value is None:
        return None
    if unit == "month_number":
        return _as_int(value)
    year = _as_int(value)
    if unit == "year" and year is not None:
        return f"{year:04d}-01-01"  # a bare number would be read as epoch milliseconds
    stamp = as_datetime(value)
    if stamp is None:
        return value
    if stamp.tzinfo is not None:
        return stamp.isoformat()
    if unit in ("year", "month", "date"):
        return stamp.date().isoformat()
    return stamp.isoformat() + "Z"


def _float(text: str) -> float | bool | None:
    """A numeric string as a float, None for NaN/inf (not JSON), False if not a number."""
    try:
        number = float(text)
    except ValueError:
        return False
    return number if math.isfinite(number) else None


def _numbers(col_type: str, values: list[Any]) -> list[float] | None:
    """The values as floats when the column is numeric, else None."""
    if col_type not in ("integer", "number", "unknown"):
        return None
    out: list[float] = []
    for value in values:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            out.append(float(value))
        elif isinstance(value, str) and col_type != "unknown":
            number = _float(value)  # exact decimals and NaN arrive as strings
            if number is False:
                return None
            if number is not None:
                out.append(number)
        else:
            return None
    if col_type == "unknown" and not out:
        return None
    return out


def number_format(name: str, col_type: str, numbers: list[float]) -> str:
    """d3 format for a measure: ',.0f' for integers, '.1%' for 0..1 rates, else ',.2f'."""
    if set(words(name)) & _PERCENT_WORDS and numbers and all(0 <= n <= 1 for n in numbers):
        return ".1%"
    if col_type == "integer" or (col_type == "unknown" and all(n.is_integer() for n in numbers)):
        return ",.0f"
    return ",.2f"


def _distinct(values: list[Any]) -> int:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values})


def unique_names(names: list[str]) -> list[str]:
    """Column names made unique ('id', 'id_2'), since chart records are keyed by name."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def profile(result: QueryResult) -> list[ChartColumn]:
    """Classify every column of the result by its type and, for text, by its values."""
    names = unique_names([c.name for c in result.columns])
    columns: list[ChartColumn] = []
    for index, (name, column) in enumerate(zip(names, result.columns, strict=True)):
        values = [row[index] for row in result.rows if row[index] is not None]
        common: dict[str, Any] = {
            "name": name,
            "index": index,
            "type": column.type,
            "distinct": _distinct(values),
            "label_len": max((len(str(v)) for v in values), default=0),
        }
        unit = temporal_unit(name, column.type, values)
        # Keys such as customer_id are numbers but label things; they never get summed.
        key_like = bool(words(name)) and words(name)[-1] in _ID_WORDS
        numbers = None if unit or key_like else _numbers(column.type, values)
        if unit:
            columns.append(ChartColumn(role="temporal", unit=unit, **common))
        elif numbers is not None:
            fmt = number_format(name, column.type, numbers)
            nonneg = all(n >= 0 for n in numbers)
            columns.append(ChartColumn(role="measure", fmt=fmt, non_negative=nonneg, **common))
        else:
            columns.append(ChartColumn(role="category", **common))
    return columns


def records(result: QueryResult, columns: list[ChartColumn]) -> list[dict[str, Any]]:
    """Rows as Vega-Lite records: dates in UTC wall-clock form, numeric strings as numbers."""
    out: list[dict[str, Any]] = []
    for row in result.rows:
        record: dict[str, Any] = {}
        for col in columns:
            value = row[col.index]
            if col.role == "temporal":
                value = temporal_value(value, col.unit)
            elif col.role == "measure" and isinstance(value, str):
                number = _float(value)
                value = number if isinstance(number, float) else None
            record[col.name] = value
        out.append(record)
    return out
