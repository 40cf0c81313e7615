"""validate_sql: parse with sqlglot, then run small rules in order; only reads get through.

Layer 1 of the safety model. Each rule is `(expression, ctx) -> expression`; a rule that finds
something wrong raises Rejected with one or more errors pointing into the SQL.
"""

from __future__ import annotations

import difflib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlglot
from pydantic import BaseModel, Field
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from tools.errors import (
    DENIED_FUNCTION,
    EMPTY_SQL,
    INVALID_ARGUMENT,
    MULTIPLE_STATEMENTS,
    NOT_READ_ONLY,
    PARSE_ERROR,
    UNKNOWN_COLUMN,
    UNKNOWN_TABLE,
    ErrorInfo,
    SqlsageError,
)
from tools.sql_policy import (
    QUERY_ROOTS,
    SQLITE_IMPLICIT_COLUMNS,
    WRITE_KEYWORDS,
    WRITE_NODES,
    function_name,
    is_denied,
)

if TYPE_CHECKING:
    from tools.catalog import SchemaCatalog, TableInfo
    from tools.databases import Database

# sqlglot logs a warning for every statement it falls back to parsing as a Command.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

MAX_SQL_CHARS = 1_000_000
_CACHED_VALIDATIONS = 256  # per database schema
_CACHED_SQL_CHARS = 20_000  # longer statements are validated every time
_CACHE_LOCK = threading.Lock()
_TOKEN_REPR = re.compile(r"<Token token_type: [^,]*, text: (.*?), line: \d+.*?>")


class ValidationResult(BaseModel):
    """Outcome of validate_sql: the normalized SQL to run, or errors saying what to fix."""

    valid: bool
    sql: str = Field(description="Normalized SQL in the target dialect (with LIMIT) when valid.")
    dialect: str
    tables: list[str] = Field(default_factory=list, description="Tables the query reads.")
    errors: list[ErrorInfo] = Field(default_factory=list)
    limit: int | None = Field(default=None, description="The row limit in the normalized SQL.")
    limit_applied: bool = Field(
        default=False, description="True when the validator injected or lowered the LIMIT."
    )

    def sql_with_limit(self, limit: int) -> str:
        """The normalized SQL with the applied LIMIT replaced (run_sql fetches one extra row)."""
        if not self.valid or not self.limit_applied:
            return self.sql
        # The applied LIMIT is the outermost clause, generated last: where the text ends with
        # it, swapping the number is the same as generating again (and much cheaper).
        suffix = f" LIMIT {self.limit}"
        if self.sql.endswith(suffix):
            return f"{self.sql[: -len(suffix)]} LIMIT {limit}"
        # TOP / FETCH FIRST dialects: the normalized SQL parsed back, its outer limit replaced.
        expression = sqlglot.parse_one(self.sql, read=self.dialect)
        expression.set("limit", exp.Limit(expression=exp.Literal.number(limit)))
        return expression.sql(dialect=self.dialect, copy=False)


class Rejected(Exception):
    """Raised by a rule: one or more errors."""

    def __init__(self, *errors: SqlsageError) -> None:
        super().__init__(errors[0].message)
        self.errors = list(errors)


@dataclass
class RuleContext:
    """What rules share: the SQL text, the exposed schema, the dialect and the row cap."""

    sql: str
    dialect: str
    catalog: SchemaCatalog | None
    max_rows: int | None
    tables: list[str] = field(default_factory=list)
    limit: int | None = None
    limit_applied: bool = False
    _walked: tuple[exp.Expr, dict[type, list[tuple[int, exp.Expr]]]] | None = field(
        default=None, repr=False
    )

    def find_all(self, root: exp.Expr, *kinds: type) -> list[exp.Expr]:
        """The nodes of these kinds under root, in breadth-first order: like root.find_all,
        from one walk shared by the rules that read the tree before any rewrites it."""
        if self._walked is None or self._walked[0] is not root:
            by_type: dict[type, list[tuple[int, exp.Expr]]] = {}
            for position, node in enumerate(root.walk()):
                by_type.setdefault(type(node), []).append((position, node))
            self._walked = (root, by_type)
        groups = [nodes for t, nodes in self._walked[1].items() if issubclass(t, kinds)]
        if len(groups) == 1:
            return [node for _, node in groups[0]]
        return [node for _, node in sorted(pair for nodes in groups for pair in nodes)]

    def forget_walk(self) -> None:
        """The tree was rewritten: the next find_all walks it again."""
        self._walked = None

    def error(
        self,
        code: str,
        message: str,
        node: exp.Expr | None = None,
        hint: str | None = None,
        did_you_mean: str | None = None,
    ) -> SqlsageError:
        """An error that points at the node's position in the SQL."""
        line, col = _position(self.sql, node)
        return SqlsageError(
            code, message, hint=hint, sql=self.sql, line=line, col=col, did_you_mean=did_you_mean
        )


Rule = Callable[[exp.Expr, RuleContext], exp.Expr]


def _position(sql: str, node: exp.Expr | None) -> tuple[int | None, int | None]:
    if node is None:
        return None, None
    ident = node if isinstance(node, exp.Identifier) else node.find(exp.Identifier)
    meta = (ident.meta if ident is not None else None) or node.meta
    start = meta.get("start") if meta else None
    if start is None:
        return None, None
    line = sql.count("\n", 0, start) + 1
    col = start - (sql.rfind("\n", 0, start) + 1) + 1
    return line, col


# ---- parsing: exactly one statement ------------------------------------------------------
def parse_single(sql: str, ctx: RuleContext, read: str) -> exp.Expr:
    """Parse the text; reject empty input, several statements and unparseable SQL."""
    if not sql.strip():
        raise Rejected(
            SqlsageError(EMPTY_SQL, "The SQL is empty.", hint="Send one SELECT statement.")
        )
    if len(sql) > MAX_SQL_CHARS:
        raise Rejected(
            SqlsageError(
                INVALID_ARGUMENT,
                f"The SQL is {len(sql):,} characters; the limit is {MAX_SQL_CHARS:,}.",
                hint="Send a shorter query.",
            )
        )
    try:
        statements = [
            s
            for s in sqlglot.parse(sql, read=read)
            if s is not None and not isinstance(s, exp.Semicolon)
        ]
    except (ParseError, TokenError) as exc:
        raise Rejected(_parse_failure(sql, exc, read)) from None
    if not statements:
        raise Rejected(
            SqlsageError(
                EMPTY_SQL,
                "The SQL has no statement (only comments?).",
                hint="Send one SELECT statement.",
                sql=sql,
            )
        )
    if len(statements) > 1:
        kinds = ", ".join(_statement_kind(s) for s in statements)
        raise Rejected(
            ctx.error(
                MULTIPLE_STATEMENTS,
                f"Expected exactly one statement, got {len(statements)} ({kinds}).",
                statements[1],
                hint="Send a single SELECT; split the work into separate calls.",
            )
        )
    return statements[0]


def _statement_kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def _parse_failure(sql: str, exc: ParseError | TokenError, read: str) -> SqlsageError:
    first_word = _first_keyword(sql, read)
    if first_word in WRITE_KEYWORDS or "OUTFILE" in sql.upper() or "DUMPFILE" in sql.upper():
        return SqlsageError(
            NOT_READ_ONLY,
            f"'{first_word or 'INTO OUTFILE'}' statements are not allowed: only SELECT, WITH, "
            "VALUES and UNION/INTERSECT/EXCEPT may run.",
            hint="Rewrite it as a read-only SELECT.",
            sql=sql,
        )
    details = exc.errors[0] if isinstance(exc, ParseError) and exc.errors else {}
    message = _TOKEN_REPR.sub(r"'\1'", str(details.get("description") or exc).split("\n")[0])
    highlight = details.get("highlight")
    near = f" near '{highlight}'" if highlight else ""
    return SqlsageError(
        PARSE_ERROR,
        f"Cannot parse the SQL as {read}{near}: {message}",
        hint="Check the syntax at that position (quotes, commas, parentheses).",
        sql=sql,
        line=details.get("line"),
        col=details.get("col"),
    )


def _first_keyword(sql: str, read: str) -> str:
    try:
        tokens = sqlglot.tokenize(sql, read=read)
    except Exception:  # a tokenizer failure just means no keyword
        return ""
    return tokens[0].text.upper() if tokens else ""


# ---- rule: read_only ---------------------------------------------------------------------
def read_only(expression: exp.Expr, ctx: RuleContext) -> exp.Expr:
    """Only queries at the root, and nothing that writes or locks at any depth."""
    if not isinstance(expression, QUERY_ROOTS):
        kind = _statement_kind(expression)
        raise Rejected(
            ctx.error(
                NOT_READ_ONLY,
                f"'{kind}' statements are not allowed: only SELECT, WITH, VALUES and "
                "UNION/INTERSECT/EXCEPT may run.",
                expression,
                hint="Rewrite it as a read-only SELECT.",
            )
        )
    for node in ctx.find_all(expression, *WRITE_NODES):
        if isinstance(node, WRITE_NODES):
            what = {"Into": "SELECT ... INTO", "Lock": "FOR UPDATE/SHARE locking"}.get(
                type(node).__name__, _statement_kind(node)
            )
            raise Rejected(
                ctx.error(
                    NOT_READ_ONLY,
                    f"'{what}' is not allowed anywhere in a query (read-only access).",
                    node,
                    hint="Remove it; a plain SELECT returns the rows.",
                )
            )
    return expression


# ---- rule: denied_functions --------------------------------------------------------------
def denied_functions(expression: exp.Expr, ctx: RuleContext) -> exp.Expr:
    """No function that touches files, the network, sleeps, runs SQL text or administers."""
    for node in ctx.find_all(expression, exp.Func):
        assert isinstance(node, exp.Func)
        name = function_name(node)
        if is_denied(name):
            raise Rejected(
                ctx.error(
                    DENIED_FUNCTION,
                    f"Function '{name}' is not allowed: it reaches files, the network, sleeps, "
                    "runs other SQL or administers the server.",
                    node,
                    hint="Remove it; only plain query functions may be used.",
                )
            )
    return expression


# ---- rule: known_objects -----------------------------------------------------------------
@dataclass
class _Sources:
    """What names in the query can refer to."""

    by_alias: dict[str, TableInfo | list[str] | None] = field(default_factory=dict)
    tables: list[TableInfo] = field(default_factory=list)
    outputs: set[str] = field(default_factory=set)  # aliases, derived and CTE columns
    unaliased: set[str] = field(default_factory=set)  # tables referenced by their own name


def known_objects(expression: exp.Expr, ctx: RuleContext) -> exp.Expr:
    """Every table and column must exist in the exposed schema (with did-you-mean hints)."""
    catalog = ctx.catalog
    if catalog is None:
        return expression
    sources = _Sources()
    errors: list[SqlsageError] = []
    ctes = {cte.alias_or_name.lower(): cte for cte in ctx.find_all(expression, exp.CTE)}
    for cte_name, cte in ctes.items():
        columns = [c.name for c in cte.args["alias"].columns] if cte.args.get("alias") else []
        named = columns or _named_selects(cte.this)
        sources.by_alias[cte_name] = named
        sources.outputs.update(n.lower() for n in named or [])
    for table in ctx.find_all(expression, exp.Table):
        assert isinstance(table, exp.Table)
        if not isinstance(table.this, exp.Identifier):
            _note_table_alias_columns(table, sources)
            continue  # a table function, e.g. generate_series(...)
        name, schema = table.name, table.db or None
        alias = (table.alias or name).lower()
        if schema is None and name.lower() in ctes:
            sources.by_alias.setdefault(alias, sources.by_alias.get(name.lower()))
            _note_table_alias_columns(table, sources)
            continue
        resolved = catalog.resolve(name, schema)
        info = catalog.table(resolved) if resolved else None
        if info is None:
            errors.append(_unknown_table(ctx, table, catalog))
            continue
        _rename(table.this, info.name.split(".")[-1], ctx.dialect)
        if "." in info.name and not table.db:
            # Found in another exposed schema: name the schema so the database finds it too.
            table.set("db", exp.to_identifier(info.name.rsplit(".", 1)[0]))
        if info.name not in ctx.tables:
            ctx.tables.append(info.name)
        sources.tables.append(info)
        sources.by_alias[alias] = info
        if not table.alias:
            sources.unaliased.add(alias)
        _note_table_alias_columns(table, sources)
    for subquery in ctx.find_all(expression, exp.Subquery):
        if subquery.alias:
            named = _named_selects(subquery.this)
            sources.by_alias[subquery.alias.lower()] = named
            sources.outputs.update(n.lower() for n in named or [])
    for alias_node in ctx.find_all(expression, exp.Alias):
        sources.outputs.add(alias_node.alias.lower())
    if not errors:
        for column in ctx.find_all(expression, exp.Column):
            assert isinstance(column, exp.Column)
            error = _check_column(column, sources, ctx)
            if error is not None:
                errors.append(error)
    ctx.forget_walk()  # names were respelled, quoted names turned into strings
    if errors:
        raise Rejected(*errors)
    return expression


def _named_selects(query: exp.Expr) -> list[str] | None:
    """Output column names of a derived table; None when it selects * (not checkable)."""
    if not isinstance(query, exp.Query):
        return None
    select = query if isinstance(query, exp.Select) else query.find(exp.Select)
    if select is None or any(
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
        for p in select.expressions
    ):
        return None
    return list(query.named_selects)


def _note_table_alias_columns(table: exp.Table, sources: _Sources) -> None:
    alias = table.args.get("alias")
    if isinstance(alias, exp.TableAlias):
        names = [c.name for c in alias.columns]
        sources.outputs.update(n.lower() for n in names)
        if names:
            sources.by_alias[alias.name.lower()] = names


def _unknown_table(ctx: RuleContext, table: exp.Table, catalog: SchemaCatalog) -> SqlsageError:
    names = catalog.table_names()
    wanted = f"{table.db}.{table.name}" if table.db else table.name
    close = difflib.get_close_matches(wanted.lower(), [n.lower() for n in names], n=1, cutoff=0.6)
    by_lower = {n.lower(): n for n in names}
    hint = f"Did you mean '{by_lower[close[0]]}'? " if close else ""
    shown = ", ".join(names[:30]) + (f", ... ({len(names)} in all)" if len(names) > 30 else "")
    return ctx.error(
        UNKNOWN_TABLE,
        f"Table '{wanted}' does not exist.",
        table,
        hint=hint + f"Known tables: {shown}.",
        did_you_mean=by_lower[close[0]] if close else None,
    )


def _check_column(column: exp.Column, sources: _Sources, ctx: RuleContext) -> SqlsageError | None:
    if isinstance(column.this, exp.Star):
        qualifier = column.table.lower()
        star_source = sources.by_alias.get(qualifier)
        if (
            qualifier in sources.unaliased
            and star_source is not None
            and not isinstance(star_source, list)
        ):
            _rename(column.args["table"], star_source.name.split(".")[-1], ctx.dialect)
        if qualifier and qualifier not in sources.by_alias:
            return ctx.error(
                UNKNOWN_TABLE,
                f"Table or alias '{column.table}' is not in the FROM clause.",
                column,
                hint="Qualify with a table or alias the query reads from.",
            )
        return None
    name = column.name
    lowered = name.lower()
    qualifier = column.table
    if qualifier:
        source = sources.by_alias.get(qualifier.lower())
        if source is None and qualifier.lower() not in sources.by_alias:
            return ctx.error(
                UNKNOWN_TABLE,
                f"Table or alias '{qualifier}' is not in the FROM clause.",
                column,
                hint="Use one of: " + ", ".join(sorted(k for k in sources.by_alias)) + ".",
            )
        if isinstance(source, list):
            if lowered not in {s.lower() for s in source}:
                return _unknown_column(ctx, column, source, qualifier)
        elif source is not None:
            if qualifier.lower() in sources.unaliased:
                _rename(column.args["table"], source.name.split(".")[-1], ctx.dialect)
            found = source.column(name)
            if found is None and not (_is_sqlite(ctx) and lowered in SQLITE_IMPLICIT_COLUMNS):
                return _unknown_column(ctx, column, [c.name for c in source.columns], source.name)
            if found is not None:
                _rename(column.this, found.name, ctx.dialect)
        return None
    owners = [t for t in sources.tables if t.column(name) is not None]
    if owners:
        if len({t.name for t in owners}) == 1:
            found = owners[0].column(name)
            if found is not None:
                _rename(column.this, found.name, ctx.dialect)
        return None
    if lowered in sources.outputs or (_is_sqlite(ctx) and lowered in SQLITE_IMPLICIT_COLUMNS):
        return None
    if _is_sqlite(ctx) and column.this.quoted:
        # SQLite reads a double-quoted name that matches no column as a string literal
        # (Spider's gold SQL relies on it): make that explicit instead of rejecting it.
        column.replace(exp.Literal.string(name))
        return None
    if not sources.tables and not sources.by_alias:
        return None  # e.g. SELECT x without FROM: the database will explain
    candidates = [c.name for t in sources.tables for c in t.columns]
    where = ", ".join(t.name for t in sources.tables) or "the query"
    return _unknown_column(ctx, column, candidates, where)


def _unknown_column(
    ctx: RuleContext, column: exp.Column, candidates: list[str], where: str
) -> SqlsageError:
    close = difflib.get_close_matches(
        column.name.lower(), [c.lower() for c in candidates], n=1, cutoff=0.6
    )
    by_lower = {c.lower(): c for c in candidates}
    hint = (
        f"Did you mean '{by_lower[close[0]]}'?"
        if close
        else ("Columns there: " + ", ".join(candidates[:40]) + ".")
    )
    return ctx.error(
        UNKNOWN_COLUMN,
        f"Column '{column.name}' not found in table '{where}'.",
        column,
        hint=hint,
        did_you_mean=by_lower[close[0]] if close else None,
    )


def _is_sqlite(ctx: RuleContext) -> bool:
    return ctx.dialect == "sqlite"


def _rename(identifier: exp.Expr, actual: str, dialect: str) -> None:
    """Spell a name as the database does where the dialect is case-sensitive."""
    if not isinstance(identifier, exp.Identifier) or dialect == "sqlite":
        return
    written = identifier.name
    # PostgreSQL folds unquoted names to lowercase; what matters is the name it will look up.
    effective = written.lower() if dialect == "postgres" and not identifier.quoted else written
    if effective == actual:
        return
    identifier.set("this", actual)
    if dialect == "postgres" and actual != actual.lower():
        identifier.set("quoted", True)


# ---- rule: hide_excluded_columns ---------------------------------------------------------
def hide_excluded_columns(expression: exp.Expr, ctx: RuleContext) -> exp.Expr:
    """Expand * over tables with excluded columns so hidden columns never come back."""
    catalog = ctx.catalog
    if catalog is None or not any(
        (info := catalog.table(t)) is not None and info.hidden_columns for t in ctx.tables
    ):
        return expression
    for select in list(expression.find_all(exp.Select)):
        sources = _select_sources(select, catalog)
        projections: list[exp.Expr] = []
        for projection in select.expressions:
            if isinstance(projection, exp.Star):
                for alias, info in sources:
                    projections.extend(_star(alias, info))
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                match = [(a, i) for a, i in sources if a.lower() == projection.table.lower()]
                for alias, info in match or [(projection.table, None)]:
                    projections.extend(_star(alias, info))
            else:
                projections.append(projection)
        select.set("expressions", projections)
    hidden_aliases = {
        table.alias_or_name.lower()
        for table in expression.find_all(exp.Table)
        if isinstance(table.this, exp.Identifier)
        and (info := catalog.table(f"{table.db}.{table.name}" if table.db else table.name))
        is not None
        and info.hidden_columns
    }
    for column in expression.find_all(exp.Column):
        if isinstance(column.this, exp.Star) and column.table.lower() in hidden_aliases:
            raise Rejected(
                ctx.error(
                    UNKNOWN_COLUMN,
                    f"'{column.sql()}' cannot be used here: some columns of this "
                    "table are not exposed.",
                    column,
                    hint="Name the columns you need.",
                )
            )
    return expression


def _select_sources(
    select: exp.Select, catalog: SchemaCatalog
) -> list[tuple[str, TableInfo | None]]:
    found: list[tuple[str, TableInfo | None]] = []
    from_ = select.args.get("from_") or select.args.get("from")
    nodes = [from_.this] if from_ is not None else []
    nodes += [join.this for join in select.args.get("joins") or []]
    for node in nodes:
        info = None
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            info = catalog.table(f"{node.db}.{node.name}" if node.db else node.name)
        found.append((node.alias_or_name, info))
    return found


def _star(alias: str, info: TableInfo | None) -> list[exp.Expr]:
    if info is None or not info.hidden_columns:
        return [exp.Column(this=exp.Star(), table=exp.to_identifier(alias))]
    return [exp.column(c.name, table=alias, quoted=True) for c in info.columns]


# ---- rule: enforce_limit -----------------------------------------------------------------
def enforce_limit(expression: exp.Expr, ctx: RuleContext) -> exp.Expr:
    """Inject LIMIT max_rows, or clamp a larger literal one."""
    cap = ctx.max_rows
    if cap is None:
        return expression
    limit = expression.args.get("limit")
    current: int | None = None
    if isinstance(limit, exp.Fetch):  # FETCH FIRST n ROWS ONLY
        options = limit.args.get("limit_options")
        exotic = options is not None and (
            options.args.get("percent") or options.args.get("with_ties")
        )
        current = None if exotic else _literal_int(limit.args.get("count"))
    elif isinstance(limit, exp.Limit):
        current = _literal_int(limit.expression)
    if limit is not None:
        if current is not None and current <= cap:
            ctx.limit = current
            return expression
        if current is None:
            # A computed LIMIT cannot be clamped in place: cap the whole query instead.
            assert isinstance(expression, exp.Query)
            expression = exp.select("*").from_(expression.subquery("_sqlsage_capped"))
    expression.set("limit", exp.Limit(expression=exp.Literal.number(cap)))
    ctx.limit = cap
    ctx.limit_applied = True
    return expression


def _literal_int(node: exp.Expr | None) -> int | None:
    if isinstance(node, exp.Literal) and not node.is_string:
        try:
            return int(node.this)
        except ValueError:
            return None
    return None


RULES: tuple[Rule, ...] = (
    read_only,
    denied_functions,
    known_objects,
    hide_excluded_columns,
    enforce_limit,
)


def validate_sql(
    sql: str,
    *,
    dialect: str,
    catalog: SchemaCatalog | None = None,
    max_rows: int | None = None,
    from_dialect: str | None = None,
) -> ValidationResult:
    """Check one SQL statement is a read-only query over known tables; normalize and cap it."""
    ctx = RuleContext(sql=sql, dialect=dialect, catalog=catalog, max_rows=max_rows)
    read = from_dialect or dialect
    try:
        expression = parse_single(sql, ctx, read)
        if from_dialect and from_dialect != dialect and read == "sqlite":
            ctx.dialect = "sqlite"  # apply SQLite's quoting rule while resolving names
        for rule in RULES:
            expression = rule(expression, ctx)
        normalized = expression.sql(dialect=dialect, copy=False)  # the tree is ours alone
    except Rejected as rejected:
        return ValidationResult(
            valid=False,
            sql=sql,
            dialect=dialect,
            tables=ctx.tables,
            errors=[e.info() for e in rejected.errors],
        )
    return ValidationResult(
        valid=True,
        sql=normalized,
        dialect=dialect,
        tables=ctx.tables,
        limit=ctx.limit,
        limit_applied=ctx.limit_applied,
    )


def validate_for(
    database: Database, sql: str, *, max_rows: int | None = None, from_dialect: str | None = None
) -> ValidationResult:
    """validate_sql against a registered database's exposed schema and row cap.

    Outcomes are remembered per schema (the catalog's `validated`, emptied when the catalog
    is refreshed): the usual flow validates a query and then runs the same text, and an
    assistant or a dashboard repeats queries; a repeat costs a dict lookup instead of a parse.
    A statement that differs from an accepted one only in its value literals reuses that
    verdict too (tools/sql_templates.py). Only verdicts are remembered, never rows."""
    if from_dialect is not None:
        _check_dialect(from_dialect)
    cap = max_rows if max_rows is not None else database.config.max_rows
    catalog = database.catalog

    def check(text: str) -> ValidationResult:
        return validate_sql(
            text, dialect=database.dialect, catalog=catalog, max_rows=cap, from_dialect=from_dialect
        )

    if len(sql) > _CACHED_SQL_CHARS:
        return check(sql)
    key = (sql, cap, from_dialect)  # a catalog belongs to one database, so one dialect
    with _CACHE_LOCK:
        known = catalog.validated.get(key)
        if known is not None:
            catalog.validated.move_to_end(key)
            return _fresh(known)
    result = None
    if from_dialect is None:
        from tools.sql_templates import shared_verdict

        result = shared_verdict(catalog.shapes, sql, database.dialect, cap, check)
    if result is None:
        result = check(sql)
    with _CACHE_LOCK:
        catalog.validated[key] = _fresh(result)
        while len(catalog.validated) > _CACHED_VALIDATIONS:
            catalog.validated.popitem(last=False)
    return result


def _fresh(result: ValidationResult) -> ValidationResult:
    """A copy no caller's change can reach (its lists and errors copied too)."""
    return result.model_copy(
        update={"tables": list(result.tables), "errors": [e.model_copy() for e in result.errors]}
    )


def _check_dialect(name: str) -> None:
    from sqlglot.dialects.dialect import Dialect

    try:
        Dialect.get_or_raise(name)
    except ValueError:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Unknown SQL dialect '{name}'.",
            hint="Use a sqlglot dialect name such as postgres, mysql, sqlite, tsql, bigquery, "
            "snowflake, duckdb.",
        ) from None
