"""Validation verdicts shared by statements that differ only in literal values.

An assistant or a dashboard runs the same query again and again with other values (`WHERE
year = 2023`, then `2024`). Whether a statement is a read-only query over known tables does
not depend on the value of a number or string compared in it, so its verdict can be reused:
what the validator checks (statement kind, writes at any depth, function names, tables,
columns) is all in the other tokens. The literals it does read, a LIMIT/OFFSET/TOP/FETCH
count, stay part of the key, as does any literal not in a plain value position (after
`INTERVAL`, `DATE`, a type name...), where a parser may read inside it.

How: the statement's tokens, with the value literals replaced by markers, are the key. The
statement that teaches a shape is validated twice, as written and with each value literal
replaced by a unique sentinel; the sentinel's normalized SQL is kept as the shape's template
only if putting the real literals back into it gives exactly what validating the real text
gave. Later statements of that shape are tokenized (no parse, no checks) and their literals
generated into the template. A shape is learned the second time it comes (most statements an
agent writes are never repeated), so a one-off statement costs only its tokenizing more.
Only accepted verdicts are shared: an error's line and column
depend on the text. A shape that fails the check is remembered as not shareable.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType

if TYPE_CHECKING:
    from tools.validate_sql import ValidationResult

TEMPLATES_PER_CATALOG = 256
MAX_VALUES = 64  # more literals than this: validated as written
_NUMBER_BASE = 791_900_000_000_001
_STRING_MARK = "sqlsage_value_{}_7919"
# A literal right after one of these is a value the validator never reads.
_VALUE_AFTER = frozenset(
    {
        TokenType.EQ,
        TokenType.NEQ,
        TokenType.LT,
        TokenType.GT,
        TokenType.LTE,
        TokenType.GTE,
        TokenType.NULLSAFE_EQ,
        TokenType.L_PAREN,
        TokenType.COMMA,
        TokenType.BETWEEN,
        TokenType.AND,
        TokenType.OR,
        TokenType.LIKE,
        TokenType.ILIKE,
        TokenType.GLOB,
        TokenType.PLUS,
        TokenType.DASH,
        TokenType.STAR,
        TokenType.SLASH,
        TokenType.MOD,
        TokenType.THEN,
        TokenType.ELSE,
        TokenType.WHEN,
        TokenType.DPIPE,
        TokenType.WHERE,
        TokenType.HAVING,
        TokenType.ON,
        TokenType.SELECT,
        TokenType.NOT,
        TokenType.CASE,
    }
)
# Row counts the validator reads (and clamps): their literals stay in the key.
_COUNT_CLAUSE = frozenset({TokenType.LIMIT, TokenType.OFFSET, TokenType.TOP, TokenType.FETCH})
_IN_COUNT_CLAUSE = frozenset(
    {
        TokenType.NUMBER,
        TokenType.COMMA,
        TokenType.FIRST,
        TokenType.NEXT,
        TokenType.L_PAREN,
        TokenType.R_PAREN,
        TokenType.PLUS,
        TokenType.DASH,
        TokenType.STAR,
        TokenType.SLASH,
    }
)
_VALUE_KINDS = (TokenType.NUMBER, TokenType.STRING)


@dataclass(frozen=True)
class Shape:
    """A statement split into its key (tokens, value literals as markers) and its values."""

    key: tuple[Any, ...]
    values: tuple[Token, ...]


@dataclass(frozen=True)
class Template:
    """The normalized SQL of a shape with sentinels where its values go, and the verdict."""

    result: ValidationResult
    sentinels: tuple[re.Pattern[str], ...]  # each as it appears in result.sql, in value order


def shape_of(sql: str, dialect: str) -> Shape | None:
    """The statement's shape, or None when it has no value literal (or cannot be tokenized:
    the validator will say why)."""
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except (TokenError, ValueError):
        return None
    key: list[Any] = []
    values: list[Token] = []
    previous: TokenType | None = None
    counting = False
    for token in tokens:
        kind = token.token_type
        if kind in _COUNT_CLAUSE:
            counting = True
        elif counting and kind not in _IN_COUNT_CLAUSE:
            counting = False
        if (
            kind in _VALUE_KINDS
            and not counting
            and previous in _VALUE_AFTER
            and _written_plainly(sql, token)
        ):
            key.append(kind)
            values.append(token)
        else:
            key.append((kind, token.text))
        previous = kind
    if not values or len(values) > MAX_VALUES:
        return None
    return Shape(tuple(key), tuple(values))


def _sentinel(kind: TokenType, n: int) -> str:
    if kind == TokenType.NUMBER:
        return str(_NUMBER_BASE + n)
    return "'" + _STRING_MARK.format(n) + "'"


def _with_sentinels(sql: str, shape: Shape) -> str:
    """The statement with each value literal (as written, quotes included) replaced."""
    parts: list[str] = []
    at = 0
    for n, token in enumerate(shape.values):
        parts.append(sql[at : token.start])
        parts.append(_sentinel(token.token_type, n))
        at = token.end + 1
    parts.append(sql[at:])
    return "".join(parts)


def _written_plainly(sql: str, token: Token) -> bool:
    """A number written as its text, or a string between two equal quotes (no prefix): the
    literals whose span in the text is the token's own."""
    written = sql[token.start : token.end + 1]
    if token.token_type == TokenType.NUMBER:
        return written == token.text
    return len(written) >= 2 and written[0] in "'\"" and written[-1] == written[0]


def _generated(token: Token, dialect: str) -> str:
    """The literal as the validator's generator writes it."""
    if token.token_type == TokenType.NUMBER:
        return exp.Literal.number(token.text).sql(dialect=dialect)
    return exp.Literal.string(token.text).sql(dialect=dialect)


def _sentinel_pattern(text: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w.'])" + re.escape(text) + r"(?![\w.'])")


def _constant(text: str) -> Callable[[re.Match[str]], str]:
    """A replacement taken as it is (no backslash escapes)."""
    return lambda _match: text


def fill(template: Template, shape: Shape, dialect: str) -> str | None:
    """The template's SQL with this statement's values in place of the sentinels."""
    sql = template.result.sql
    for pattern, token in zip(template.sentinels, shape.values, strict=True):
        sql, count = pattern.subn(_constant(_generated(token, dialect)), sql)
        if count != 1:
            return None
    return sql


def learn(
    sql: str,
    shape: Shape,
    dialect: str,
    actual: ValidationResult,
    validate: Callable[[str], ValidationResult],
) -> Template | None:
    """A template for the shape, if validating it with sentinels and filling in this
    statement's values reproduces `actual` (the statement validated as written) exactly."""
    if not actual.valid:
        return None
    result = validate(_with_sentinels(sql, shape))
    if not result.valid:
        return None
    sentinels = tuple(
        _sentinel_pattern(_sentinel(t.token_type, n)) for n, t in enumerate(shape.values)
    )
    template = Template(result, sentinels)
    if fill(template, shape, dialect) != actual.sql:
        return None
    if result.model_copy(update={"sql": actual.sql}) != actual:
        return None
    return template


_ONCE = "once"  # met once: a shape is learned the second time it comes (most never do)
_LOCK = threading.Lock()


def shared_verdict(
    shapes: OrderedDict[tuple[Any, ...], Any],
    sql: str,
    dialect: str,
    cap: int | None,
    validate: Callable[[str], ValidationResult],
) -> ValidationResult | None:
    """The verdict of a statement whose shape was seen before, from a catalog's `shapes`
    (by shape and row cap: a Template, None when not shareable, or _ONCE): the template filled
    with this statement's values. The second statement of a shape is validated here (with
    `validate`) and teaches the template. None when the statement has no shape, or its shape
    is new or not shareable: validate it as written."""
    shape = shape_of(sql, dialect)
    if shape is None:
        return None
    key = (shape.key, cap)
    with _LOCK:
        if key not in shapes:
            _remember(shapes, key, _ONCE)
            return None
        shapes.move_to_end(key)
        entry = shapes[key]
    if isinstance(entry, Template):
        filled = fill(entry, shape, dialect)
        if filled is None:
            return None
        return entry.result.model_copy(update={"sql": filled, "tables": list(entry.result.tables)})
    if entry != _ONCE:
        return None  # known not to be shareable
    result = validate(sql)
    learned = learn(sql, shape, dialect, result, validate)
    with _LOCK:
        _remember(shapes, key, learned)
    return result


def _remember(
    shapes: OrderedDict[tuple[Any, ...], Any], key: tuple[Any, ...], entry: Template | str | None
) -> None:
    shapes[key] = entry
    while len(shapes) > TEMPLATES_PER_CATALOG:
        shapes.popitem(last=False)
