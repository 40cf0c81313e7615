"""Defense in depth on SQLite: with validation bypassed, the connection alone refuses every write,
the file's bytes do not change and no file appears anywhere."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.databases import Database, DatabaseConfig
from tools.errors import SqlsageError
from tools.run_sql import execute_read_only

ATTEMPTS = [
    "DELETE FROM orders",
    "INSERT INTO regions (region_id, name) VALUES (99, 'x')",
    "UPDATE customers SET email = NULL",
    "REPLACE INTO regions VALUES (1, 'x')",
    "DROP TABLE returns",
    "CREATE TABLE evil (x)",
    "CREATE TEMP TABLE evil (x)",
    "CREATE VIEW evil AS SELECT 1",
    "CREATE INDEX evil ON orders(status)",
    "ALTER TABLE orders ADD COLUMN evil INT",
    "ATTACH DATABASE '{scratch}/attached.db' AS evil",
    "VACUUM INTO '{scratch}/vacuumed.db'",
    "VACUUM",
    "REINDEX",
    "ANALYZE",
    "PRAGMA query_only = 0",
    "PRAGMA journal_mode = WAL",
    "PRAGMA user_version = 7",
    "PRAGMA writable_schema = 1",
    "COMMIT; DELETE FROM orders",
    "SELECT 1; DELETE FROM orders",
    "BEGIN IMMEDIATE",
    "SELECT load_extension('{scratch}/evil.so')",
    "SELECT writefile('{scratch}/written.txt', 'x')",
    "WITH d AS (SELECT 1) DELETE FROM orders",
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(*roots: Path) -> set[str]:
    found: set[str] = set()
    for root in roots:
        for folder, _, files in os.walk(root):
            found.update(os.path.join(folder, f) for f in files)
    return found


@pytest.fixture()
def copy(sample_path: Path, tmp_path: Path) -> Iterator[tuple[Database, Path, Path]]:
    """A private copy of the sample in its own folder, plus an empty scratch folder."""
    db_dir = tmp_path / "db"
    scratch = tmp_path / "scratch"
    db_dir.mkdir()
    scratch.mkdir()
    path = Path(shutil.copy(sample_path, db_dir / "sample.sqlite"))
    database = Database(DatabaseConfig(name="copy", url=f"sqlite:///{path}"))
    yield database, path, scratch
    database.dispose()


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_connection_refuses_write_without_validation(
    copy: tuple[Database, Path, Path], attempt: str
) -> None:
    database, path, scratch = copy
    sql = attempt.format(scratch=scratch)
    before_digest, before_files = _digest(path), _tree(path.parent, scratch, Path.cwd())
    with pytest.raises(SqlsageError) as info:
        execute_read_only(database, sql, max_rows=10, timeout_s=5)
    assert info.value.code in ("query_failed",), info.value
    # The same pooled connection is still read-only afterwards (e.g. after PRAGMA attempts).
    with pytest.raises(SqlsageError):
        execute_read_only(database, "DELETE FROM regions", max_rows=1, timeout_s=5)
    assert execute_read_only(database, "PRAGMA query_only", max_rows=1, timeout_s=5).rows == [[1]]
    assert _digest(path) == before_digest
    assert _tree(path.parent, scratch, Path.cwd()) == before_files


def test_reads_still_work(copy: tuple[Database, Path, Path]) -> None:
    database, _, _ = copy
    result = execute_read_only(database, "SELECT COUNT(*) FROM orders", max_rows=5, timeout_s=5)
    assert result.rows == [[12000]]
