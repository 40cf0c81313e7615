"""Table names a SQL text reads (for examples and for scoring schema linking)."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError


def tables_in_sql(sql: str, dialect: str | None = None) -> list[str]:
    """Real tables referenced by a query (CTE names excluded), in order of appearance."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (ParseError, TokenError):
        return []
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    found: list[str] = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or table.name.lower() in ctes:
            continue
        name = f"{table.db}.{table.name}" if table.db else table.name
        if name not in found:
            found.append(name)
    return found
