"""schema_lookup: tables, columns, keys, comments and sample values, paged for big schemas."""

from __future__ import annotations

import difflib
import fnmatch
from typing import Literal

from pydantic import BaseModel, Field

from tools.catalog import SchemaCatalog, TableInfo
from tools.databases import Database
from tools.errors import INVALID_ARGUMENT, UNKNOWN_TABLE, SqlsageError

Detail = Literal["names", "summary", "full"]
MAX_PAGE = 500


class SchemaPage(BaseModel):
    """One page of a database's exposed schema, typed and rendered for a model."""

    database: str
    dialect: str
    detail: str
    tables: list[TableInfo]
    total_tables: int = Field(description="Tables matching the filter, on all pages.")
    offset: int
    next_offset: int | None = Field(description="Offset of the next page, None on the last.")
    text: str = Field(description="Compact CREATE TABLE-like rendering of this page.")


def schema_lookup(
    database: Database,
    *,
    tables: list[str] | None = None,
    pattern: str | None = None,
    detail: Detail = "full",
    limit: int = 50,
    offset: int = 0,
) -> SchemaPage:
    """Describe exposed tables: all (paged), the named ones, or those matching a pattern."""
    if detail not in ("names", "summary", "full"):
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"detail must be names, summary or full, got '{detail}'.",
            hint="Use detail='names' first on big schemas.",
        )
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"limit must be 1..{MAX_PAGE} and offset >= 0, got limit={limit}, offset={offset}.",
            hint="Page with offset=next_offset.",
        )
    catalog = database.catalog
    names = _select(catalog.table_names(), tables, pattern, catalog)
    page = names[offset : offset + limit]
    if detail == "names":
        infos = [TableInfo(name=n, kind="table") for n in page]
    elif detail == "summary":
        infos = [t for n in page if (t := catalog.table(n)) is not None]
    else:
        infos = [t for n in page if (t := catalog.with_stats(n)) is not None]
    next_offset = offset + limit if offset + limit < len(names) else None
    text = render(infos, detail)
    if next_offset is not None:
        text += (
            f"\n-- {len(names) - offset - len(page)} more tables: call again with "
            f"offset={next_offset}, or filter with a pattern."
        )
    return SchemaPage(
        database=database.name,
        dialect=database.dialect,
        detail=detail,
        tables=infos,
        total_tables=len(names),
        offset=offset,
        next_offset=next_offset,
        text=text,
    )


def _select(
    all_names: list[str], tables: list[str] | None, pattern: str | None, catalog: SchemaCatalog
) -> list[str]:
    names = all_names
    if tables:
        chosen: list[str] = []
        for wanted in tables:
            schema, _, bare = wanted.rpartition(".")
            resolved = catalog.resolve(bare, schema or None)
            if resolved is None:
                close = difflib.get_close_matches(
                    wanted.lower(), [n.lower() for n in all_names], n=3, cutoff=0.6
                )
                by_lower = {n.lower(): n for n in all_names}
                hint = (
                    "Did you mean " + " or ".join(f"'{by_lower[c]}'" for c in close) + "? "
                    if close
                    else ""
                )
                raise SqlsageError(
                    UNKNOWN_TABLE,
                    f"Table '{wanted}' does not exist.",
                    hint=hint + "List tables with detail='names'.",
                )
            if resolved not in chosen:
                chosen.append(resolved)
        names = chosen
    if pattern:
        lowered = pattern.lower()
        if any(ch in pattern for ch in "*?["):
            names = [n for n in names if fnmatch.fnmatchcase(n.lower(), lowered)]
        else:
            names = [n for n in names if lowered in n.lower()]
    return names


def render(tables: list[TableInfo], detail: Detail = "full") -> str:
    """CREATE TABLE-like text: compact, with comments, keys and sample values."""
    if detail == "names":
        return "\n".join(t.name for t in tables)
    return "\n\n".join(render_table(t, with_samples=detail == "full") for t in tables)


def render_table(table: TableInfo, *, with_samples: bool = True) -> str:
    """One table as CREATE TABLE text with comments as SQL comments."""
    lines: list[str] = []
    head = f"-- {table.comment}" if table.comment else ""
    if table.row_estimate is not None:
        head += ("" if head else "--") + f" (~{table.row_estimate:,} rows)"
    if head:
        lines.append(head)
    keyword = "VIEW" if table.kind == "view" else "TABLE"
    lines.append(f"CREATE {keyword} {table.name} (")
    body: list[tuple[str, str]] = []
    for col in table.columns:
        parts = [f"  {col.name} {col.type}"]
        if not col.nullable:
            parts.append("NOT NULL")
        if col.primary_key and len(table.primary_key) == 1:
            parts.append("PRIMARY KEY")
        note = col.comment or ""
        if with_samples and col.samples:
            note += ("; " if note else "") + "e.g. " + ", ".join(repr(s) for s in col.samples)
        body.append((" ".join(parts), note))
    constraints: list[str] = []
    if len(table.primary_key) > 1:
        constraints.append(f"  PRIMARY KEY ({', '.join(table.primary_key)})")
    for fk in table.foreign_keys:
        constraints.append(
            f"  FOREIGN KEY ({', '.join(fk.columns)}) REFERENCES "
            f"{fk.ref_table}({', '.join(fk.ref_columns)})"
        )
    items = [text for text, _ in body] + constraints
    for index, item in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        note = body[index][1] if index < len(body) else ""
        lines.append(f"{item}{comma}" + (f" -- {note}" if note else ""))
    lines.append(");")
    return "\n".join(lines)
