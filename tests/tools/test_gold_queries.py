"""Every Spider dev and BIRD mini-dev gold query goes through validate_sql and run_sql, and the
rows equal direct sqlite3 execution (apart from the LIMIT the validator adds)."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tools.databases import Database, DatabaseConfig
from tools.errors import SqlsageError
from tools.run_sql import run_sql
from tools.validate_sql import validate_for

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
CAP = 100_000  # above every gold result, so the injected LIMIT never cuts rows


def _questions(root: Path, file: str, sql_key: str, db_folder: str) -> list[tuple[Path, str]]:
    items = json.loads((root / file).read_text(encoding="utf-8"))
    found = []
    for item in items:
        path = root / db_folder / item["db_id"] / f"{item['db_id']}.sqlite"
        if path.exists():
            found.append((path, item[sql_key]))
    return found


def _normalize(rows: list[Any]) -> Counter[str]:
    return Counter(repr(tuple(round(v, 6) if isinstance(v, float) else v for v in r)) for r in rows)


def _check_all(pairs: list[tuple[Path, str]]) -> list[str]:
    databases: dict[Path, Database] = {}
    problems: list[str] = []
    try:
        for path, sql in pairs:
            database = databases.setdefault(
                path,
                Database(DatabaseConfig(name=path.stem, url=f"sqlite:///{path}", max_rows=CAP)),
            )
            validation = validate_for(database, sql)
            if not validation.valid:
                problems.append(f"rejected {path.stem}: {sql} -> {validation.errors[0].message}")
                continue
            try:
                result = run_sql(database, sql)
            except SqlsageError as error:
                problems.append(f"failed {path.stem}: {sql} -> {error}")
                continue
            conn = sqlite3.connect(path)
            try:
                expected = conn.execute(sql).fetchall()
            finally:
                conn.close()
            got = [tuple(r) for r in result.rows]
            same_order = got == [tuple(_json(v) for v in r) for r in expected]
            if not same_order and _normalize(got) != _normalize(
                [tuple(_json(v) for v in r) for r in expected]
            ):
                problems.append(f"different rows {path.stem}: {sql}")
    finally:
        for database in databases.values():
            database.dispose()
    return problems


def _json(value: Any) -> Any:
    from tools.json_values import json_safe

    return json_safe(value)


def test_spider_dev_gold_queries(shared_data: Path) -> None:
    pairs = _questions(shared_data / "spider_dev", "dev.json", "query", "database")
    assert len(pairs) == 972
    problems = _check_all(pairs)
    assert problems == [], "\n".join(problems[:20])


def test_bird_minidev_gold_queries(shared_data: Path) -> None:
    pairs = _questions(shared_data / "bird_minidev", "mini_dev_sqlite.json", "SQL", "dev_databases")
    assert len(pairs) == 140
    problems = _check_all(pairs)
    assert problems == [], "\n".join(problems[:20])
