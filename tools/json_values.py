"""Database values -> JSON-safe values, and result column types normalized across drivers."""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

_MAX_EXACT_FLOAT = 2**53


def json_safe(value: Any) -> Any:
    """A JSON-encodable form of one database value (dates ISO, decimals numeric, bytes b64)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        if value == value.to_integral_value() and abs(value) < _MAX_EXACT_FLOAT:
            return int(value)
        # A float keeps charts and arithmetic simple; keep the exact text where it would not.
        as_float = float(value)
        return as_float if Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "base64:" + base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return str(value)


_PLAIN = frozenset({type(None), bool, int, str})
_PLAIN_OR_FLOAT = _PLAIN | {float}


def json_safe_row(row: Any) -> list[Any]:
    """json_safe over one row; rows of plain values (most rows) are copied as they are."""
    kinds = set(map(type, row))
    if kinds <= _PLAIN:
        return list(row)
    if kinds <= _PLAIN_OR_FLOAT and all(math.isfinite(v) for v in row if type(v) is float):
        return list(row)
    return [json_safe(v) for v in row]


def value_type(value: Any) -> str | None:
    """The normalized type of one Python value (None for NULL)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, (float, Decimal)):
        return "number"
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    if isinstance(value, (dict, list)):
        return "json"
    return "text"


def infer_type(values: list[Any]) -> str:
    """The normalized type of a column from its values: integer+number widens to number."""
    seen: set[str] = set()
    for value in values:
        kind = value_type(value)
        if kind is not None:
            seen.add(kind)
            if len(seen) > 2:
                break
    if not seen:
        return "unknown"
    if len(seen) == 1:
        return seen.pop()
    if seen == {"integer", "number"}:
        return "number"
    return "text"
