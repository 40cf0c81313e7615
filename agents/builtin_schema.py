"""What the builtin model knows of a database: tables, typed columns, keys, join paths, and
which column names a row ("label"), read from the catalog the tools expose."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from memory.index_documents import humanize
from tools.catalog import ColumnInfo, SchemaCatalog, TableInfo

_NUMERIC = re.compile(r"int|real|float|double|numeric|decimal|number|money", re.I)
_DATE_TYPE = re.compile(r"date|time", re.I)
_DATE_NAME = re.compile(r"(_date|_on|_at|_time|^date|^day)$|date", re.I)
_LABEL_NAMES = ("name", "title", "label", "full_name", "description")


def singular(word: str) -> str:
    """'categories' -> 'category', 'orders' -> 'order', 'addresses' -> 'address'."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def is_numeric(column: ColumnInfo) -> bool:
    """Numbers one can sum or average (keys excluded by the caller)."""
    return bool(_NUMERIC.search(column.type or ""))


def is_date(column: ColumnInfo) -> bool:
    """A date or timestamp column: by type, or by name when dates are stored as ISO text."""
    if _DATE_TYPE.search(column.type or ""):
        return True
    return (column.type or "").upper().startswith(("TEXT", "VARCHAR", "CHAR")) and bool(
        _DATE_NAME.search(column.name)
    )


def is_key(table: TableInfo, column: ColumnInfo) -> bool:
    """Primary or foreign key columns, or columns named like ids."""
    if column.primary_key or column.name in table.primary_key:
        return True
    if any(column.name in fk.columns for fk in table.foreign_keys):
        return True
    return column.name.lower() == "id" or column.name.lower().endswith("_id")


@dataclass(frozen=True)
class Edge:
    """A join step: left.left_cols = right.right_cols."""

    left: str
    right: str
    left_cols: tuple[str, ...]
    right_cols: tuple[str, ...]


@dataclass
class SchemaView:
    """Tables by name plus the foreign-key graph (walkable both ways)."""

    tables: dict[str, TableInfo]
    edges: dict[str, list[Edge]] = field(default_factory=dict)

    @classmethod
    def from_catalog(cls, catalog: SchemaCatalog) -> SchemaView:
        """Every exposed table of a database."""
        tables = {n: t for n in catalog.table_names() if (t := catalog.table(n)) is not None}
        view = cls(tables=tables)
        for table in tables.values():
            for fk in table.foreign_keys:
                if fk.ref_table not in tables:
                    continue
                a = Edge(table.name, fk.ref_table, tuple(fk.columns), tuple(fk.ref_columns))
                b = Edge(fk.ref_table, table.name, tuple(fk.ref_columns), tuple(fk.columns))
                view.edges.setdefault(table.name, []).append(a)
                if fk.ref_table != table.name:
                    view.edges.setdefault(fk.ref_table, []).append(b)
        view._link_views()
        return view

    def _link_views(self) -> None:
        """Views have no foreign keys: join a view to a table on the table's one-column primary
        key when the view has a column of that name (order_totals.order_id -> orders)."""
        for view in self.tables.values():
            if view.kind != "view" or view.name in self.edges:
                continue
            names = {c.name.lower() for c in view.columns}
            for table in self.tables.values():
                if table.kind == "view" or len(table.primary_key) != 1:
                    continue
                key = table.primary_key[0]
                if key.lower() in names:
                    self.edges.setdefault(view.name, []).append(
                        Edge(view.name, table.name, (key,), (key,))
                    )
                    self.edges.setdefault(table.name, []).append(
                        Edge(table.name, view.name, (key,), (key,))
                    )

    def words(self, table: str) -> set[str]:
        """How people might name a table: 'order_items' -> {'order items', 'order item', ...}."""
        spoken = humanize(table)
        last = spoken.split()[-1] if spoken else spoken
        return {spoken, singular(spoken), last, singular(last)} - {""}

    def label(self, table: str) -> str | None:
        """The column that names a row of the table, if any."""
        info = self.tables[table]
        names = {c.name.lower(): c.name for c in info.columns}
        for wanted in _LABEL_NAMES:
            if wanted in names:
                return names[wanted]
        for column in info.columns:
            if column.name.lower().endswith("_name") and not is_key(info, column):
                return column.name
        return None

    def label_sql(self, table: str, alias: str) -> str | None:
        """SQL naming a row: the label column, or first and last name joined."""
        names = {c.name.lower(): c.name for c in self.tables[table].columns}
        if "first_name" in names and "last_name" in names and "name" not in names:
            return f"{alias}.{names['first_name']} || ' ' || {alias}.{names['last_name']}"
        label = self.label(table)
        return f"{alias}.{label}" if label else None

    def path(self, start: str, goal: str, max_hops: int = 4) -> list[Edge] | None:
        """The shortest join path between two tables, or None."""
        if start == goal:
            return []
        queue: deque[tuple[str, list[Edge]]] = deque([(start, [])])
        seen = {start}
        while queue:
            node, steps = queue.popleft()
            if len(steps) >= max_hops:
                continue
            for edge in self.edges.get(node, []):
                if edge.right in seen:
                    continue
                if edge.right == goal:
                    return [*steps, edge]
                seen.add(edge.right)
                queue.append((edge.right, [*steps, edge]))
        return None

    def date_columns(self, table: str) -> list[str]:
        """Date-like columns of a table, non-nullable ones first."""
        info = self.tables[table]
        dates = [c for c in info.columns if is_date(c)]
        dates.sort(key=lambda c: c.nullable)
        return [c.name for c in dates]
