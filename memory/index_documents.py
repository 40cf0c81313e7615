"""What goes into the knowledge index: one document per table, column, value, glossary term and
verified example, each with the table(s) it points to and a fingerprint group."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tools.catalog import TableInfo

if TYPE_CHECKING:
    from memory.knowledge import Knowledge

KINDS = ("table", "column", "value", "glossary", "example")
TABLE_DOC_COLUMNS = 12
GLOSSARY_GROUP = "_glossary"
EXAMPLES_GROUP = "_examples"

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def humanize(identifier: str) -> str:
    """'order_date' -> 'order date'; 'CustomerId' -> 'customer id' (how people say it)."""
    spaced = _CAMEL.sub(" ", identifier.split(".")[-1]).replace("_", " ")
    return " ".join(spaced.lower().split())


def _spoken(identifier: str) -> str:
    """The humanized name plus ', ' when it says more than the identifier itself: word pieces
    already split 'order_date' at the underscore, so only camelCase needs spelling out (every
    token saved is embedding time on a 20,000-column schema)."""
    spoken = humanize(identifier)
    return "" if spoken == identifier.lower().replace("_", " ") else f"{spoken}, "


@dataclass(frozen=True)
class IndexDoc:
    """One indexed document. `group` is the unit of incremental re-indexing."""

    kind: str
    text: str
    group: str
    table: str = ""
    column: str = ""
    value: str = ""
    tables: tuple[str, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        """A stable, short id: the same thing always gets the same id."""
        key = "\x1f".join(
            (
                self.kind,
                self.table,
                self.column,
                self.value,
                self.text if self.kind in ("glossary", "example") else "",
            )
        )
        return hashlib.sha1(key.encode("utf-8")).hexdigest()[:24]

    def all_tables(self) -> tuple[str, ...]:
        """Every table this document points to."""
        return self.tables or ((self.table,) if self.table else ())


def table_documents(
    info: TableInfo, values: dict[str, list[str]], notes: Any = None
) -> list[IndexDoc]:
    """Documents for one table: the table, each column, and low-cardinality text values."""
    table_note = getattr(notes, "description", None) if notes is not None else None
    column_notes: dict[str, str] = dict(getattr(notes, "columns", {}) or {})
    column_notes = {k.lower(): v for k, v in column_notes.items()}
    comment = table_note or info.comment or ""
    # Each column has a document of its own; the table's lists the first few, which is what
    # tells a table apart, and keeps the longest documents (the slowest to embed) short.
    shown = [c.name for c in info.columns[:TABLE_DOC_COLUMNS]]
    more = len(info.columns) - len(shown)
    column_list = ", ".join(shown) + (f" and {more} more" if more > 0 else "")
    spoken = _spoken(info.name).removesuffix(", ")
    name = f"{info.name} ({spoken})" if spoken else info.name
    text = " ".join(f"table {name}: {comment} columns: {column_list}".split())
    docs = [IndexDoc(kind="table", text=text, group=info.name, table=info.name)]
    for column in info.columns:
        note = column_notes.get(column.name.lower()) or column.comment or ""
        sample = values.get(column.name) or column.samples or []
        example = f" e.g. {', '.join(sample[:5])}" if sample else ""
        docs.append(
            IndexDoc(
                kind="column",
                text=f"{info.name}.{column.name} ({_spoken(column.name)}{column.type}): "
                f"{note}{example}".strip(),
                group=info.name,
                table=info.name,
                column=column.name,
            )
        )
        for value in values.get(column.name, []):
            docs.append(
                IndexDoc(
                    kind="value",
                    text=f"{value} ({humanize(column.name)} of {humanize(info.name)})",
                    group=info.name,
                    table=info.name,
                    column=column.name,
                    value=value,
                )
            )
    return docs


def knowledge_documents(knowledge: Knowledge, table_names: list[str]) -> list[IndexDoc]:
    """Glossary terms and verified examples."""
    from tools.sql_tables import tables_in_sql

    known = {n.lower(): n for n in table_names}
    docs: list[IndexDoc] = []
    for term in knowledge.glossary:
        tables = tuple(known[t.lower()] for t in (term.tables or []) if t.lower() in known)
        sql = f" SQL: {term.sql}" if term.sql else ""
        sql += f" Only where: {term.filter}" if term.filter else ""
        docs.append(
            IndexDoc(
                kind="glossary",
                text=f"{term.term}: {term.definition}{sql}",
                group=GLOSSARY_GROUP,
                tables=tables,
                payload={
                    "term": term.term,
                    "definition": term.definition,
                    "sql": term.sql or "",
                    "filter": term.filter or "",
                },
            )
        )
    for example in knowledge.examples:
        tables = tuple(known[t.lower()] for t in tables_in_sql(example.sql) if t.lower() in known)
        docs.append(
            IndexDoc(
                kind="example",
                text=example.question,
                group=EXAMPLES_GROUP,
                tables=tables,
                payload={"question": example.question, "sql": example.sql},
            )
        )
    return docs


def fingerprint(docs: list[IndexDoc]) -> str:
    """A hash of a group's documents: unchanged fingerprint, nothing to re-embed."""
    digest = hashlib.sha256()
    for doc in sorted(docs, key=lambda d: d.id):
        digest.update(doc.id.encode())
        digest.update(doc.text.encode("utf-8"))
        digest.update(repr(sorted(doc.payload.items())).encode("utf-8"))
    return digest.hexdigest()[:32]
