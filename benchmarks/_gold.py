"""What a gold query reads, and what a semantic_search rendering shows, for schema linking.

Gold tables come from tools.sql_tables; gold columns from sqlglot's scopes, each resolved to
its table through the scope's aliases (or, unqualified, to the scope's table that has such a
column). All names are lowercased: SQLite compares identifiers case-insensitively.
"""

from __future__ import annotations

import re
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import traverse_scope

from tools.databases import Database
from tools.sql_tables import tables_in_sql


def schema_of(database: Database) -> dict[str, set[str]]:
    """Lowercased table -> lowercased column names."""
    catalog = database.catalog
    found = {}
    for name in catalog.table_names():
        info = catalog.table(name)
        found[name.lower()] = {c.name.lower() for c in info.columns} if info else set()
    return found


def gold_tables(sql: str, database: Database) -> frozenset[str]:
    """Tables the gold SQL reads, as the catalog names them (lowercased)."""
    names = tables_in_sql(sql, "sqlite")
    return frozenset((database.catalog.resolve(n) or n).lower() for n in names)


def gold_columns(sql: str, schema: dict[str, set[str]]) -> frozenset[tuple[str, str]]:
    """(table, column) pairs the gold SQL names, aliases resolved per scope where possible."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
        scopes = traverse_scope(tree)
    except SqlglotError:
        return frozenset()
    # Correlated subqueries name outer aliases; fall back to every alias of the query.
    everywhere = _aliases(t for t in tree.find_all(exp.Table))
    found: set[tuple[str, str]] = set()
    for scope in scopes:
        here = _aliases(s for s in scope.sources.values() if isinstance(s, exp.Table))
        for column in scope.columns:
            name = column.name.lower()
            if not name or name == "*":
                continue
            if column.table:
                qualifier = column.table.lower()
                candidates = [here.get(qualifier) or everywhere.get(qualifier) or qualifier]
            else:  # unqualified: the table of this scope that has such a column
                candidates = [t for t in here.values() if name in schema.get(t, set())]
            table = next((t for t in candidates if name in schema.get(t, set())), None)
            if table is not None:
                found.add((table, name))
    return frozenset(found)


def _aliases(tables: Any) -> dict[str, str]:
    return {t.alias_or_name.lower(): t.name.lower() for t in tables}


_CREATE = re.compile(r"^CREATE (?:TABLE|VIEW) (\S+) \(", re.MULTILINE)
_COMMENT = re.compile(r"--[^\n]*")


def renderings(context: str) -> dict[str, str]:
    """Each rendered table's CREATE text without its SQL comments, by lowercased name."""
    found = {}
    for part in context.split("\n\n"):
        match = _CREATE.search(part)
        if match:
            found[match.group(1).lower()] = _COMMENT.sub("", part[match.start() :])
    return found


def named_in(column: str, text: str) -> bool:
    """Whether the column name occurs in text as a whole word, case-insensitively."""
    pattern = r"(?<![A-Za-z0-9_])" + re.escape(column) + r"(?![A-Za-z0-9_])"
    return re.search(pattern, text, re.IGNORECASE) is not None
