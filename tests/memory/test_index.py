"""The knowledge index and semantic_search on the real sample database, real Chroma and the
real offline embedding model."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory.embeddings import MiniLMEmbedding
from memory.index import KnowledgeIndex
from tools.databases import Database, DatabaseConfig
from tools.errors import SqlsageError
from tools.semantic_search import semantic_search


@pytest.fixture(scope="module")
def built(sample_db: Database, tmp_path_factory: pytest.TempPathFactory) -> KnowledgeIndex:
    index = KnowledgeIndex(
        path=tmp_path_factory.mktemp("index") / "index", embedding=MiniLMEmbedding()
    )
    report = index.build(sample_db)
    assert report.documents == report.embedded > 300 and report.groups_changed >= 9
    return index


@pytest.fixture()
def copy(sample_path: Path, tmp_path: Path) -> Iterator[tuple[Database, Path]]:
    path = Path(shutil.copy(sample_path, tmp_path / "copy.sqlite"))
    shutil.copy(str(sample_path) + ".comments.json", str(path) + ".comments.json")
    database = Database(DatabaseConfig(name="copy", url=f"sqlite:///{path}"))
    yield database, path
    database.dispose()


def test_values_are_found(built: KnowledgeIndex, sample_db: Database) -> None:
    result = semantic_search(built, sample_db, "How many customers are in Germany?", k=3)
    assert result.tables[0] == "customers"
    assert any(h.kind == "value" and h.text.startswith("Germany") for h in result.hits[:10])
    assert "CREATE TABLE customers" in result.context
    assert "customers.country = 'Germany'" in result.context


def test_typos_match_lexically(built: KnowledgeIndex, sample_db: Database) -> None:
    lexical = semantic_search(built, sample_db, "lines with revnue above 1000", k=2, mode="lexical")
    assert lexical.hits[0].table == "order_items"  # its comment says "Line revenue"
    assert (
        "order_items"
        in semantic_search(built, sample_db, "lines with revnue above 1000", k=2).tables
    )


def test_join_paths_are_added(built: KnowledgeIndex, sample_db: Database) -> None:
    question = "revenue per product category in 2023"
    plain = semantic_search(built, sample_db, question, k=3, expand_fk=False)
    assert plain.tables == ["products", "categories", "order_items"]
    joined = semantic_search(built, sample_db, "category names and order line quantities", k=2)
    assert {"categories", "order_items"} <= set(joined.tables)
    assert "products" in joined.tables[2:], "the bridge table comes after the ranked ones"


def test_modes_and_kinds(built: KnowledgeIndex, sample_db: Database) -> None:
    for mode in ("lexical", "vector", "hybrid"):
        result = semantic_search(built, sample_db, "returns by reason", k=2, mode=mode)  # type: ignore[arg-type]
        assert result.tables[0] == "returns", mode
    columns = semantic_search(built, sample_db, "hire date of employees", kinds=["column"])
    assert {h.kind for h in columns.hits} == {"column"}
    assert columns.hits[0].table == "employees" and columns.hits[0].column == "hire_date"


@pytest.mark.parametrize(
    ("question", "kwargs", "expected"),
    [
        ("", {}, "The question is empty."),
        ("   ", {}, "The question is empty."),
        ("x" * 10_001, {}, "10,001 characters"),
        ("orders", {"k": 0}, "k must be between 1 and 50"),
        ("orders", {"kinds": ["tables"]}, "Unknown kind(s) 'tables'"),
        ("orders", {"mode": "magic"}, "Unknown search mode 'magic'"),
    ],
)
def test_bad_input(
    built: KnowledgeIndex,
    sample_db: Database,
    question: str,
    kwargs: dict[str, object],
    expected: str,
) -> None:
    with pytest.raises(SqlsageError) as info:
        semantic_search(built, sample_db, question, **kwargs)  # type: ignore[arg-type]
    assert info.value.code == "invalid_argument" and expected in info.value.message
    assert info.value.hint


def test_longest_allowed_question_works(built: KnowledgeIndex, sample_db: Database) -> None:
    question = ("customers in Germany " * 500)[:10_000]
    assert semantic_search(built, sample_db, question, k=2).tables[0] == "customers"


def test_incremental_reindex_only_changed_tables(
    copy: tuple[Database, Path], tmp_path: Path
) -> None:
    database, path = copy
    index = KnowledgeIndex(path=tmp_path / "index", embedding=MiniLMEmbedding())
    first = index.build(database)
    again = index.build(database)
    assert (again.groups_changed, again.embedded, again.documents) == (0, 0, first.documents)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE regions ADD COLUMN manager_note TEXT")
        conn.execute("CREATE TABLE warehouses (warehouse_id INTEGER PRIMARY KEY, city TEXT)")
        conn.execute("DROP TABLE returns")
    conn.close()
    database.catalog.refresh()
    third = index.build(database)
    assert third.groups_changed == 2 and third.groups_removed == 1
    assert third.embedded < 20
    result = semantic_search(index, database, "warehouse city", k=1)
    assert result.tables == ["warehouses"]
    assert all(h.table != "returns" for h in semantic_search(index, database, "return reason").hits)


def test_interrupted_build_is_completed_next_time(
    copy: tuple[Database, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database, _ = copy
    index = KnowledgeIndex(path=tmp_path / "index", embedding=MiniLMEmbedding())
    original = KnowledgeIndex._upsert
    calls = {"n": 0}

    def dying_upsert(self: KnowledgeIndex, *args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed mid-build")
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr("memory.index.EMBED_BATCH", 64)
    monkeypatch.setattr(KnowledgeIndex, "_upsert", dying_upsert)
    with pytest.raises(KeyboardInterrupt):
        index.build(database)
    monkeypatch.setattr(KnowledgeIndex, "_upsert", original)
    finished = KnowledgeIndex(path=tmp_path / "index", embedding=MiniLMEmbedding())
    report = finished.build(database)
    assert report.groups_changed >= 1
    stored = finished.stored_groups("copy")
    assert all(fp != "mixed" and n == found for fp, _, n, found in stored.values())
    assert finished.build(database).groups_changed == 0
    full = KnowledgeIndex(path=tmp_path / "fresh", embedding=MiniLMEmbedding()).build(database)
    assert report.documents == full.documents


def test_deleted_index_is_rebuilt_on_first_use(copy: tuple[Database, Path], tmp_path: Path) -> None:
    database, _ = copy
    KnowledgeIndex(path=tmp_path / "index", embedding=MiniLMEmbedding()).build(database)
    # Deleted under a process that still has it open (the first index is not closed).
    shutil.rmtree(tmp_path / "index")
    index = KnowledgeIndex(path=tmp_path / "index", embedding=MiniLMEmbedding())
    assert semantic_search(index, database, "customers in Germany", k=1).tables == ["customers"]


def test_corrupt_index_is_moved_aside_and_rebuilt(
    copy: tuple[Database, Path], tmp_path: Path
) -> None:
    database, _ = copy
    KnowledgeIndex(path=tmp_path / "index", embedding=MiniLMEmbedding()).build(database)
    (tmp_path / "index" / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    index = KnowledgeIndex(path=tmp_path / "index", embedding=MiniLMEmbedding())
    result = semantic_search(index, database, "customers in Germany", k=1)
    assert result.tables == ["customers"]
    assert index.warnings and "moved it to" in index.warnings[0]
    assert list(tmp_path.glob("index.corrupt-*")), "the broken index is kept for inspection"
