"""Plan -> SQL: joins along foreign-key paths, aliases that agree with glossary expressions,
written in SQLite's dialect and transpiled by sqlglot for the target database."""

from __future__ import annotations

import re

import sqlglot

from agents.builtin_plan import Dim, Plan
from agents.builtin_schema import Edge, SchemaView


def _initials(table: str) -> str:
    parts = [p for p in re.split(r"[_\s]+", table.lower()) if p]
    return "".join(p[0] for p in parts) or "t"


class _Aliases:
    def __init__(self, view: SchemaView, plan: Plan) -> None:
        self.by_table: dict[str, str] = {}
        metric = plan.measure.metric
        if metric is not None:
            used = set(
                re.findall(r"\b([a-z_][a-z0-9_]*)\.", metric.sql + " " + (metric.filter or ""))
            )
            for alias in used:
                table = next((t for t in metric.tables if _initials(t) == alias), None)
                table = table or next((t for t in metric.tables if t.startswith(alias)), None)
                if table is not None:
                    self.by_table.setdefault(table, alias)

    def of(self, table: str) -> str:
        if table not in self.by_table:
            base = _initials(table)
            alias, n = base, 2
            while alias in self.by_table.values():
                alias, n = f"{base}{n}", n + 1
            self.by_table[table] = alias
        return self.by_table[table]


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def _bucket(dim: Dim, alias: str) -> str:
    column = f"{alias}.{_quote(dim.column or '')}"
    if dim.bucket == "Q":
        return f"strftime('%Y', {column}) || '-Q' || ((CAST(strftime('%m', {column}) AS INTEGER) + 2) / 3)"
    return f"strftime('{dim.bucket}', {column})"


def write_sql(plan: Plan, view: SchemaView, dialect: str) -> str:
    """The plan as one SELECT in the database's dialect."""
    aliases = _Aliases(view, plan)
    measure = plan.measure
    bases = list(measure.metric.tables) if measure.metric else [measure.table]
    joined: list[str] = [bases[0]]
    joins: list[str] = []

    def connect(table: str) -> None:
        if table in joined:
            return
        best: list[Edge] | None = None
        for start in joined:
            path = view.path(start, table)
            if path is not None and (best is None or len(path) < len(best)):
                best = path
        if best is None:
            raise ValueError(f"no join path to {table}")
        for edge in best:
            if edge.right in joined:
                continue
            left, right = aliases.of(edge.left), aliases.of(edge.right)
            on = " AND ".join(
                f"{right}.{_quote(rc)} = {left}.{_quote(lc)}"
                for lc, rc in zip(edge.left_cols, edge.right_cols, strict=False)
            )
            joins.append(f"JOIN {_quote(edge.right)} AS {right} ON {on}")
            joined.append(edge.right)

    for table in bases[1:]:
        connect(table)
    for dim in plan.dims:
        connect(dim.table)
    for flt in plan.filters:
        connect(flt.table)
    if plan.time is not None:
        connect(plan.time[0])

    base_alias = aliases.of(bases[0])
    select: list[str] = []
    group: list[str] = []
    for dim in plan.dims:
        alias = aliases.of(dim.table)
        if dim.bucket:
            expr = _bucket(dim, alias)
        elif dim.column:
            expr = f"{alias}.{_quote(dim.column)}"
        else:
            expr = view.label_sql(dim.table, alias) or f"{alias}.*"
        name = re.sub(r"\W+", "_", dim.label or dim.table).strip("_") or "label"
        select.append(f"{expr} AS {name}")
        group.append(name)
    value = _measure_sql(plan, view, aliases, base_alias, len(joined) > 1)
    if measure.kind == "rows":
        alias = aliases.of(measure.table)
        select = [f"{alias}.{_quote(c)}" for c in measure.columns] or [value]
        group = []
        ordered = plan.order_column
        if ordered is not None and ordered[1] not in measure.columns and not measure.columns:
            select.append(f"{aliases.of(ordered[0])}.{_quote(ordered[1])}")
    else:
        select.append(f"{value} AS {measure.label}")
        column = f"{aliases.of(measure.table)}.{_quote(measure.column or '')}"
        select += [f"{agg.upper()}({column}) AS {agg}_{measure.column}" for agg in measure.also]

    where = [f"{aliases.of(f.table)}.{_quote(f.column)} {f.op} {f.value}" for f in plan.filters]
    if measure.metric is not None and measure.metric.filter:
        where.append(measure.metric.filter)
    if plan.time is not None:
        table, column, start, end = plan.time
        ref = f"{aliases.of(table)}.{_quote(column)}"
        where.append(f"{ref} >= '{start}' AND {ref} < '{end}'")

    sql = f"SELECT {', '.join(select)} FROM {_quote(bases[0])} AS {base_alias}"
    if joins:
        sql += " " + " ".join(joins)
    if where:
        sql += " WHERE " + " AND ".join(where)
    if group:
        sql += " GROUP BY " + ", ".join(group)
    if plan.order and measure.kind != "rows":
        sql += f" ORDER BY {measure.label} {plan.order.upper()}"
    elif plan.order and plan.order_column is not None:
        column = f"{aliases.of(plan.order_column[0])}.{_quote(plan.order_column[1])}"
        sql += f" ORDER BY {column} {plan.order.upper()}"
    elif any(d.bucket for d in plan.dims):
        sql += " ORDER BY " + ", ".join(group)
    if plan.limit:
        sql += f" LIMIT {plan.limit}"
    if dialect != "sqlite":
        sql = sqlglot.transpile(sql, read="sqlite", write=dialect)[0]
    return sql


def _measure_sql(plan: Plan, view: SchemaView, aliases: _Aliases, base: str, joined: bool) -> str:
    measure = plan.measure
    if measure.kind == "metric" and measure.metric is not None:
        return measure.metric.sql.strip()
    if measure.kind == "count":
        pk = view.tables[measure.table].primary_key
        if joined and len(pk) == 1:
            return f"COUNT(DISTINCT {aliases.of(measure.table)}.{_quote(pk[0])})"
        return "COUNT(*)"
    alias = aliases.of(measure.table)
    column = f"{alias}.{_quote(measure.column or '')}"
    if measure.kind == "count_distinct":
        return f"COUNT(DISTINCT {column})"
    if measure.kind in ("sum", "avg", "min", "max"):
        return f"{measure.kind.upper()}({column})"
    label = view.label_sql(measure.table, alias)
    if label and " || " in label:
        first, last = (part.strip() for part in label.split("|| ' ' ||"))
        return f"{first}, {last}"
    return label or f"{alias}.*"
