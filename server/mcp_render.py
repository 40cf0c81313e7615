"""What an MCP client's model reads of a tool's result: compact text, bounded in bytes.

Structured content carries the whole typed result for the application; the text block is
for the model, whose context is the scarce resource. Query rows are fenced as untrusted data
(the same fence the agent uses), and every text stays under MAX_TEXT_BYTES whatever the page
size or the width of the table.
"""

from __future__ import annotations

from agents.previews import DATA_NOTE, FENCE_CLOSE, FENCE_OPEN, PREVIEW_ROWS, _cell, column_stats
from tools.results import QueryResult

MAX_TEXT_BYTES = 60_000  # under the 64 KB a model is handed, with room for the JSON escaping
MAX_COLUMNS_SHOWN = 40


def bounded(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """The text cut at a line boundary to fit `limit` UTF-8 bytes, saying that it was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[: limit - 200].decode("utf-8", errors="ignore")
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    return (
        cut + f"\n… (cut here: {len(data):,} bytes in all; ask for less, e.g. a page or a filter)"
    )


def result_text(result: QueryResult, *, sql: str | None = None, rows: int = PREVIEW_ROWS) -> str:
    """The SQL, the first rows as TSV with counts and column statistics inside the untrusted
    fence, in under MAX_TEXT_BYTES: rows stop where the budget would be passed, the fence is
    always closed."""
    columns = result.columns[:MAX_COLUMNS_SHOWN]
    width = len(columns)
    lines = [f"SQL: {short(sql)}"] if sql else []
    stats = column_stats(_narrow(result, width)) if result.rows else []
    tail = [FENCE_CLOSE]
    if result.truncated:
        tail.append(
            f"The result was cut at {result.row_count} rows (truncated): add a LIMIT, a filter "
            "or an aggregate to see what you need."
        )
    if stats:
        tail += ["Column statistics over the rows returned:", *stats]
    tail.append(DATA_NOTE)
    header = "\t".join(_cell(c.name) for c in columns)
    budget = MAX_TEXT_BYTES - 400 - _size(lines) - _size(tail) - len(header.encode())
    body: list[str] = []
    for row in result.rows[:rows]:
        line = "\t".join(_cell(v) for v in row[:width])
        budget -= len(line.encode()) + 1
        if budget < 0:
            break
        body.append(line)
    more = "more than " if result.truncated else ""
    head = f"{more}{result.row_count} row(s)"
    if len(body) < result.row_count:
        head += f", first {len(body)} shown"
    if width < len(result.columns):
        head += f"; first {width} of {len(result.columns)} columns shown"
    head += f"; {result.elapsed_ms:.1f} ms"
    lines += [f"Query ran: {head}.", FENCE_OPEN, header, *body, *tail]
    return bounded("\n".join(lines))


def _size(lines: list[str]) -> int:
    return sum(len(line.encode()) + 1 for line in lines)


def short(sql: str, limit: int = 2000) -> str:
    return sql if len(sql) <= limit else sql[:limit] + f"… ({len(sql):,} characters)"


def _narrow(result: QueryResult, width: int) -> QueryResult:
    if width == len(result.columns):
        return result
    return result.model_copy(
        update={"columns": result.columns[:width], "rows": [r[:width] for r in result.rows]}
    )
