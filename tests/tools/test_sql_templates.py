"""Verdicts shared by statements that differ only in value literals (tools/sql_templates.py):
a reused verdict is exactly what validating the text would give, on every Spider dev and BIRD
mini-dev gold query with its literals changed; row counts, typed literals and errors are
never shared."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType

from tools import sql_templates
from tools.databases import Database, DatabaseConfig
from tools.validate_sql import ValidationResult, validate_for, validate_sql


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "shop.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER, name TEXT, city TEXT, score REAL)")
    conn.commit()
    conn.close()
    db = Database(DatabaseConfig(name="shop", url=f"sqlite:///{path}", max_rows=1000))
    yield db
    db.dispose()


def _full(database: Database, sql: str) -> ValidationResult:
    return validate_sql(sql, dialect=database.dialect, catalog=database.catalog, max_rows=1000)


def test_the_third_statement_of_a_shape_is_not_parsed(
    database: Database, parses: list[str]
) -> None:
    parses.clear()
    texts = [
        f"SELECT name FROM customers WHERE city = '{city}' AND score > {score}"
        for city, score in (("Paris", 1), ("Oslo", 2.5), ("O'Hare", 30), ("Köln", 40))
    ]
    texts[2] = texts[2].replace("O'Hare", "O''Hare")
    results = [validate_for(database, text) for text in texts]
    # The first is validated as written, the second as written and with sentinels (it
    # teaches the shape), the next ones not at all.
    assert len(parses) == 3 and parses[:2] == texts[:2]
    assert parses[2].endswith("city = 'sqlsage_value_0_7919' AND score > 791900000000002")
    for text, result in zip(texts, results, strict=True):
        assert result == _full(database, text)
    assert results[2].sql == (
        "SELECT name FROM customers WHERE city = 'O''Hare' AND score > 30 LIMIT 1000"
    )
    assert results[3].sql.endswith("city = 'Köln' AND score > 40 LIMIT 1000")
    # A sign is a token: `> -4` is another shape, validated as written.
    negative = "SELECT name FROM customers WHERE city = 'Rome' AND score > -4"
    assert validate_for(database, negative) == _full(database, negative)
    assert len(parses) == 4 and parses[3] == negative


def test_row_counts_stay_in_the_key_and_are_still_clamped(
    database: Database, parses: list[str]
) -> None:
    texts = [f"SELECT id FROM customers WHERE id = {n} LIMIT 5000" for n in (1, 2, 3)]
    for text in texts:
        validate_for(database, text)
    parses.clear()
    clamped = validate_for(database, "SELECT id FROM customers WHERE id = 4 LIMIT 5000")
    assert parses == []  # the shape's template
    assert clamped.sql.endswith("WHERE id = 4 LIMIT 1000") and clamped.limit_applied
    small = validate_for(database, "SELECT id FROM customers WHERE id = 4 LIMIT 7")
    assert parses == ["SELECT id FROM customers WHERE id = 4 LIMIT 7"]  # another shape
    assert small.sql.endswith("LIMIT 7") and not small.limit_applied
    offset = sql_templates.shape_of("SELECT id FROM t LIMIT 10 OFFSET 20", "sqlite")
    fetch = sql_templates.shape_of(
        "SELECT id FROM t WHERE a = 1 FETCH FIRST 3 ROWS ONLY", "postgres"
    )
    mysql = sql_templates.shape_of("SELECT id FROM t WHERE a = 1 LIMIT 5, 10", "mysql")
    assert offset is None  # its only literals are counts
    assert fetch is not None and [t.text for t in fetch.values] == ["1"]
    assert mysql is not None and [t.text for t in mysql.values] == ["1"]


def test_typed_and_prefixed_literals_are_part_of_the_shape() -> None:
    shape = sql_templates.shape_of(
        "SELECT x + INTERVAL '1 day', DATE '2024-01-01', E'a\\nb' FROM t WHERE a = 5",
        "postgres",
    )
    assert shape is not None and [t.text for t in shape.values] == ["5"]
    assert sql_templates.shape_of("SELECT name FROM customers", "sqlite") is None
    assert sql_templates.shape_of("SELECT 'unterminated FROM t", "sqlite") is None


def test_errors_are_never_shared(database: Database) -> None:
    texts = [f"SELECT '{pad}' || nope FROM customers WHERE id = 1" for pad in ("a", "bbbb", "cc")]
    results = [validate_for(database, text) for text in texts]
    assert [r.valid for r in results] == [False, False, False]
    # The error points at `nope`, which moves with the literal before it.
    assert [r.errors[0].col for r in results] == [15, 18, 16]
    for text, result in zip(texts, results, strict=True):
        assert result == _full(database, text)


def test_a_statement_holding_a_sentinel_is_validated_as_written(
    database: Database, parses: list[str]
) -> None:
    for n in (1, 2):
        validate_for(database, f"SELECT id FROM customers WHERE id = {n} OR score = 1.5")
    parses.clear()
    # Filling in 791900000000002 for the first sentinel makes the second one ambiguous.
    text = "SELECT id FROM customers WHERE id = 791900000000002 OR score = 5"
    result = validate_for(database, text)
    assert parses == [text] and result == _full(database, text)


def test_a_schema_refresh_forgets_the_shapes(database: Database) -> None:
    for n in (1, 2):
        validate_for(database, f"SELECT id FROM customers WHERE id = {n}")
    assert any(isinstance(v, sql_templates.Template) for v in database.catalog.shapes.values())
    database.catalog.refresh()
    assert not database.catalog.shapes


def _changed(sql: str, dialect: str, step: int) -> str:
    """The statement with every number and plain string literal changed (`step` apart)."""
    tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    out, at = [], 0
    for token in tokens:
        written = sql[token.start : token.end + 1]
        if token.token_type == TokenType.NUMBER and written == token.text:
            new = f"{token.text}{step}" if "." in token.text else str(int(token.text) + step)
        elif token.token_type == TokenType.STRING and written[:1] in "'\"":
            quote = written[0]
            new = written[:-1] + f"v{step}" + quote
        else:
            continue
        out.append(sql[at : token.start])
        out.append(new)
        at = token.end + 1
    out.append(sql[at:])
    return "".join(out)


def _gold(shared: Path) -> list[tuple[Path, str]]:
    pairs = []
    for folder, file, key, dbs in (
        ("spider_dev", "dev.json", "query", "database"),
        ("bird_minidev", "mini_dev_sqlite.json", "SQL", "dev_databases"),
    ):
        for item in json.loads((shared / folder / file).read_text(encoding="utf-8")):
            path = shared / folder / dbs / item["db_id"] / f"{item['db_id']}.sqlite"
            if path.exists():
                pairs.append((path, item[key]))
    return pairs


@pytest.mark.shared_data
@pytest.mark.slow
def test_shared_verdicts_equal_full_validation_on_spider_and_bird_gold(
    shared_data: Path,
) -> None:
    databases: dict[Path, Database] = {}
    shared = refused = 0
    problems: list[str] = []
    try:
        for path, sql in _gold(shared_data):
            database = databases.setdefault(
                path, Database(DatabaseConfig(name=path.stem, url=f"sqlite:///{path}"))
            )
            cap = database.config.max_rows
            variants = [_changed(sql, "sqlite", step) for step in (1, 2, 3)]
            for variant in variants:
                got = validate_for(database, variant)
            full = validate_sql(variant, dialect="sqlite", catalog=database.catalog, max_rows=cap)
            if got != full:
                problems.append(f"{path.stem}: {variant}\n  shared {got.sql}\n  full   {full.sql}")
            shape = sql_templates.shape_of(variant, "sqlite")
            if shape is not None:
                entry = database.catalog.shapes.get((shape.key, cap))
                shared += isinstance(entry, sql_templates.Template)
                refused += entry is None
    finally:
        for database in databases.values():
            database.dispose()
    assert problems == [], "\n".join(problems[:10])
    # 386 of the 1,112 compare values outside LIMIT (the variants change LIMIT counts too, which
    # makes each variant a shape of its own): their third variant was served by a template,
    # and no shape failed its check.
    assert shared >= 380 and refused == 0, (shared, refused)
