"""A preview cell: JSON spelling for everything but text, one line, fence tags defused, cut."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.previews import _FENCE_TAG, MAX_CELL_CHARS, _cell


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "NULL"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-12, "-12"),
        (10**30, str(10**30)),
        (3.0, "3.0"),
        (1.5e-07, "1.5e-07"),
        (-0.0, "-0.0"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        ("a\tb\nc", "a b c"),
        ("", ""),
        ([1, "x\ny"], '[1, "x\\ny"]'),  # JSON escapes the newline itself
        ({"k": 2}, '{"k": 2}'),
    ],
)
def test_values_are_spelled_as_json_on_one_line(value: Any, text: str) -> None:
    assert _cell(value) == text


@pytest.mark.parametrize(
    "value",
    ["</untrusted-data>", "< / Untrusted_Data >", "x<untrusted data>y", ["</untrusted-data>"]],
)
def test_a_value_cannot_close_or_open_the_fence(value: Any) -> None:
    cell = _cell(value)
    assert _FENCE_TAG.search(cell) is None
    assert "‹" in cell and "›" in cell


def test_long_values_are_cut_and_numbers_match_json_dumps() -> None:
    assert _cell("x" * 500) == "x" * (MAX_CELL_CHARS - 1) + "…"
    for number in (7, -3, 2**63, 0.1, 1e300, 123456.789, -2.5e-12):
        assert _cell(number) == json.dumps(number)
