"""The builtin model's answers: one or two plain sentences built only from the result rows."""

from __future__ import annotations

from typing import Any

MAX_NAMED = 5


def fmt(value: Any) -> str:
    """A value as a person writes it: thousands separators, at most 2 decimals."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


def answer(
    question: str, columns: list[str], rows: list[list[Any]], row_count: int, truncated: bool
) -> str:
    """Describe a result in words: a single value, a ranking, or a list."""
    if row_count == 0:
        return "The query returned no rows, so there is nothing matching that question in the data."
    if row_count == 1 and len(columns) == 1:
        return f"The answer is {fmt(rows[0][0])} ({columns[0].replace('_', ' ')})."
    more = "more than " if truncated else ""
    if len(columns) >= 2 and all(isinstance(r[-1], int | float) for r in rows[:MAX_NAMED]):
        named = "; ".join(
            f"{' '.join(fmt(v) for v in r[:-1])}: {fmt(r[-1])}" for r in rows[:MAX_NAMED]
        )
        head = f"{more}{fmt(row_count)} rows" if row_count > 1 else "1 row"
        tail = " (first shown)" if row_count > MAX_NAMED else ""
        return f"{head} of {columns[-1].replace('_', ' ')} by {columns[0].replace('_', ' ')}{tail}: {named}."
    named = ", ".join(" ".join(fmt(v) for v in r) for r in rows[:MAX_NAMED])
    rest = (
        f", and {fmt(row_count - MAX_NAMED)} more"
        if row_count > MAX_NAMED and not truncated
        else ""
    )
    if truncated:
        rest = ", and more"
    return f"Found {more}{fmt(row_count)} row(s): {named}{rest}."
