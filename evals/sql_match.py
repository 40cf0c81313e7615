"""An informative exact-set match of predicted and gold SQL by their sqlglot trees.

Not Spider's official exact-match metric (that one needs tables.json, ignores values and
compares its own parse); this is a dialect-aware structural comparison that shows how often a
model writes the gold query itself rather than an equivalent one:
- both queries are parsed (SQLite dialect by default), identifiers and keywords case-folded,
  table aliases replaced by the table names they stand for, `AS` column aliases dropped;
- SELECT items, FROM/JOIN tables, WHERE and HAVING conjuncts and GROUP BY items compare as
  sets; ORDER BY and LIMIT compare as written; set operations and subqueries recursively.
A query sqlglot cannot parse matches nothing (None: unknown).
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError


def exact_set_match(predicted: str | None, gold: str, dialect: str = "sqlite") -> bool | None:
    """True when the two queries have the same clauses up to order within set-like clauses;
    None when either does not parse."""
    if not predicted or not predicted.strip():
        return False
    try:
        pred_tree = sqlglot.parse_one(predicted, read=dialect)
        gold_tree = sqlglot.parse_one(gold, read=dialect)
    except (SqlglotError, ValueError):
        return None
    if pred_tree is None or gold_tree is None:
        return None
    return signature(pred_tree, dialect) == signature(gold_tree, dialect)


def signature(tree: exp.Expr, dialect: str) -> Any:
    """A hashable, order-free-where-it-should-be summary of a query."""
    if isinstance(tree, exp.SetOperation):
        kind = type(tree).__name__.lower()
        distinct = bool(tree.args.get("distinct"))
        return (kind, distinct, signature(tree.left, dialect), signature(tree.right, dialect))
    if not isinstance(tree, exp.Select):
        return ("other", _text(tree, dialect, {}))
    aliases = _table_aliases(tree)

    def text(node: exp.Expr | None) -> str:
        return _text(node, dialect, aliases) if node is not None else ""

    select = frozenset(text(_unaliased(e)) for e in tree.expressions)
    tables = frozenset(t.name.lower() for t in tree.find_all(exp.Table) if _own(t, tree))
    where = frozenset(text(c) for c in _conjuncts(tree.args.get("where")))
    having = frozenset(text(c) for c in _conjuncts(tree.args.get("having")))
    group = tree.args.get("group")
    group_items = frozenset(text(e) for e in group.expressions) if group else frozenset()
    order = tree.args.get("order")
    order_items = tuple(text(e) for e in order.expressions) if order else ()
    limit = text(tree.args.get("limit"))
    distinct = tree.args.get("distinct") is not None
    return ("select", distinct, select, tables, where, having, group_items, order_items, limit)


def _own(table: exp.Table, select: exp.Select) -> bool:
    """Whether the table belongs to this SELECT (not to a subquery inside it)."""
    return table.find_ancestor(exp.Select) is select


def _table_aliases(select: exp.Select) -> dict[str, str]:
    aliases = {}
    for table in select.find_all(exp.Table):
        if table.alias:
            aliases[table.alias.lower()] = table.name.lower()
    return aliases


def _unaliased(node: exp.Expr) -> exp.Expr:
    return node.this if isinstance(node, exp.Alias) else node


def _conjuncts(clause: exp.Expr | None) -> list[exp.Expr]:
    if clause is None:
        return []
    condition = clause.this if isinstance(clause, exp.Where | exp.Having) else clause
    return list(condition.flatten()) if isinstance(condition, exp.And) else [condition]


def _text(node: exp.Expr, dialect: str, aliases: dict[str, str]) -> str:
    """The node's SQL with aliases resolved, subqueries summarized the same way, case-folded."""
    node = node.copy()
    for column in node.find_all(exp.Column):
        qualifier = column.table.lower()
        if qualifier:
            column.set("table", exp.to_identifier(aliases.get(qualifier, qualifier)))
    for table in node.find_all(exp.Table):
        table.set("alias", None)
    for subquery in list(node.find_all(exp.Subquery)):
        inner = subquery.this
        if isinstance(inner, exp.Select | exp.SetOperation):
            placeholder = exp.Literal.string(repr(signature(inner, dialect)))
            subquery.replace(placeholder)
    return node.sql(dialect=dialect, normalize=True).lower()
