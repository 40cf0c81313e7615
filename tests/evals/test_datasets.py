"""The bundled sample_builtin.jsonl set, the dataset loaders' errors, and BIRD's column
descriptions as comments."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from evals import spider_exec
from evals.bird_descriptions import column_comment, table_comments, write_comments_file
from evals.datasets import SAMPLE_BUILTIN, SHAPES, EvalItem, load_dataset
from tools.errors import INVALID_ARGUMENT, SqlsageError
from tools.readonly import open_sqlite_read_only

SAMPLE_QUESTIONS = load_dataset(SAMPLE_BUILTIN, "jsonl").items
TOP_N = [q for q in SAMPLE_QUESTIONS if "top_n" in q.tags]


@pytest.fixture(scope="module")
def sample_conn(sample_path: Path) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(open_sqlite_read_only(str(sample_path))) as conn:
        yield conn


# --- sample_builtin.jsonl


def test_sample_builtin_covers_every_shape() -> None:
    shapes = Counter(tag for q in SAMPLE_QUESTIONS for tag in q.tags)
    assert len(SAMPLE_QUESTIONS) >= 70
    assert set(shapes) == set(SHAPES)
    assert min(shapes.values()) >= 5, shapes
    assert all(len(q.tags) == 1 for q in SAMPLE_QUESTIONS)
    assert len({q.question_id for q in SAMPLE_QUESTIONS}) == len(SAMPLE_QUESTIONS)
    assert len({q.question.lower() for q in SAMPLE_QUESTIONS}) == len(SAMPLE_QUESTIONS)
    assert {q.db for q in SAMPLE_QUESTIONS} == {"sample"}


@pytest.mark.parametrize("question", SAMPLE_QUESTIONS, ids=lambda q: q.question_id)
def test_sample_gold_sql_returns_rows(question: EvalItem, sample_path: Path) -> None:
    rows = spider_exec.run_query(sample_path, question.gold_sql, 10)
    assert rows, question.gold_sql
    assert all(value is not None for row in rows for value in row), rows[:5]
    assert spider_exec.exec_match(sample_path, question.gold_sql, question.gold_sql).correct


@pytest.mark.parametrize("question", TOP_N, ids=lambda q: q.question_id)
def test_top_n_gold_has_no_ties_up_to_the_cut(
    question: EvalItem, sample_conn: sqlite3.Connection
) -> None:
    """The order is compared row by row: ties inside the top N or at its cut would be luck."""
    tree = sqlglot.parse_one(question.gold_sql, read="sqlite")
    assert isinstance(tree, exp.Select)
    limit = tree.args["limit"]
    (order,) = tree.args["order"].expressions
    key = [e.alias_or_name for e in tree.expressions].index(order.this.name)
    unlimited = tree.copy()
    unlimited.set("limit", None)
    rows = sample_conn.execute(unlimited.sql(dialect="sqlite")).fetchall()
    n = int(limit.expression.name)
    keys = [row[key] for row in rows[: n + 1]]
    assert len(rows) > n
    assert len(set(keys)) == len(keys), keys


# --- the loaders' errors


def _write(tmp_path: Path, *lines: str, name: str = "questions.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = '{"id": "q1", "question": "How many?", "gold_sql": "SELECT 1", "db": "sample"}'


def test_jsonl_reads_optional_fields_resolves_names_and_skips_blank_lines(tmp_path: Path) -> None:
    line = (
        '{"id": "q2", "question": "Q?", "gold_sql": "SELECT 2", "db": "pg", "evidence": "e", '
        '"tags": ["t"], "difficulty": "simple"}'
    )
    third = '{"id": "q3", "question": "Q?", "gold_sql": "SELECT 3", "db": "postgresql://h/d"}'
    path = _write(tmp_path, GOOD, "", line, third)
    found = tmp_path / "sample.db"
    found.touch()
    resolved = {"sample": found, "pg": "Database 'pg' is postgres; scoring runs on SQLite files."}
    items = load_dataset(path, "jsonl", resolve=resolved.get).items
    assert [(i.index, i.question_id, i.db_path) for i in items] == [
        (0, "q1", found),
        (1, "q2", None),
        (2, "q3", None),
    ]
    assert (items[1].evidence, items[1].tags, items[1].difficulty) == ("e", ("t",), "simple")
    assert items[1].why_skipped == "Database 'pg' is postgres; scoring runs on SQLite files."
    assert "is postgresql; scoring runs gold and predicted SQL on SQLite" in items[2].why_skipped
    unresolved = load_dataset(path, "jsonl").items[0]
    assert unresolved.db_path is None
    assert unresolved.why_skipped == "No database 'sample' is configured."


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ('{"id": "q2", "question": "Q?", "gold_sql": ', "line 2: invalid JSON"),
        ('{"id": "q2", "gold_sql": "SELECT 2", "db": "sample"}', "no text field 'question'"),
        ('{"id": "q2", "question": "", "gold_sql": "SELECT 2", "db": "s"}', "field 'question'"),
        ('{"id": "q2", "question": "Q?", "gold_sql": 2, "db": "sample"}', "field 'gold_sql'"),
        ('["q2", "Q?"]', "line 2 is not an object"),
        (GOOD, "line 2 repeats id 'q1' of line 1"),
    ],
)
def test_jsonl_errors_name_file_line_and_the_format(
    tmp_path: Path, bad_line: str, problem: str
) -> None:
    path = _write(tmp_path, GOOD, bad_line)
    with pytest.raises(SqlsageError) as raised:
        load_dataset(path, "jsonl")
    assert raised.value.code == INVALID_ARGUMENT
    assert str(path) in raised.value.message and problem in raised.value.message
    assert "--format jsonl expects" in (raised.value.hint or "")


@pytest.mark.parametrize(
    ("text", "fmt", "problem"),
    [
        ('{"question": "q"}', "spider", "holds a JSON dict, not a list of questions"),
        ("[1, 2]", "bird", "item 0 is a int, not an object"),
        ('[{"question": "q", "db_id": "d"}]', "spider", "item 0 has no text field 'query'"),
        ('[{"question": "q", "query": "SELECT 1", "db_id": "d"}]', "bird", "field 'SQL'"),
        ("[{", "spider", "line 2: invalid JSON"),
    ],
)
def test_json_datasets_say_which_file_and_what_was_expected(
    tmp_path: Path, text: str, fmt: str, problem: str
) -> None:
    path = _write(tmp_path, text, name="dev.json")
    with pytest.raises(SqlsageError) as raised:
        load_dataset(path, fmt)
    assert str(path) in raised.value.message and problem in raised.value.message
    assert f"--format {fmt} expects" in (raised.value.hint or "")


def test_missing_paths_unknown_formats_and_folders(tmp_path: Path) -> None:
    with pytest.raises(SqlsageError, match=r"Dataset file '.*absent\.json' does not exist"):
        load_dataset(tmp_path / "absent.json", "bird")
    with pytest.raises(SqlsageError, match=r"dev\.json' does not exist"):
        load_dataset(tmp_path, "spider")  # a folder without dev.json
    with pytest.raises(SqlsageError, match="is a folder; a bird dataset is one file"):
        load_dataset(tmp_path, "bird")
    with pytest.raises(SqlsageError, match="Unknown dataset format 'sparql'") as raised:
        load_dataset(tmp_path, "sparql")
    assert "spider, bird, jsonl" in (raised.value.hint or "")


def test_spider_db_ids_that_are_paths_are_never_opened(tmp_path: Path) -> None:
    (tmp_path / "database" / "x").mkdir(parents=True)
    (tmp_path / "database" / "x" / "x.sqlite").touch()
    items = [
        {"question": "q", "query": "SELECT 1", "db_id": db} for db in ("x", "../x", "..", "a/b")
    ]
    path = _write(tmp_path, json.dumps(items), name="dev.json")
    loaded = load_dataset(path, "spider").items
    assert [i.db_path is not None for i in loaded] == [True, False, False, False]


# --- BIRD's database_description CSVs as column comments


def test_column_comment_joins_name_description_and_values() -> None:
    row = {
        "original_column_name": "eyecolour_id",
        "column_name": "eye colour id",
        "column_description": "the id of the superhero's eye color",
        "value_description": "",
    }
    assert column_comment(row) == "eye colour id: the id of the superhero's eye color."
    same = {"original_column_name": "id", "column_name": "", "column_description": "the id"}
    assert column_comment(same) == "the id."
    long = {"original_column_name": "x", "column_description": "word " * 200}
    assert len(column_comment(long)) == 400 and column_comment(long).endswith("...")


def test_descriptions_in_cp1252_and_with_padded_headers_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "club" / "database_description"
    folder.mkdir(parents=True)
    (folder / "budget.csv").write_bytes(
        "original_column_name ,column_name,column_description,data_format,value_description\n"
        "spent,,money spent \u2022 in dollars,real,\n".encode("cp1252")
    )
    assert table_comments(folder / "budget.csv") == {"spent": "money spent \u2022 in dollars."}
    target = write_comments_file(tmp_path / "club", tmp_path / "out" / "club.comments.json")
    assert target is not None
    assert json.loads(target.read_text()) == {
        "tables": {"budget": {"columns": {"spent": "money spent \u2022 in dollars."}}}
    }
    assert write_comments_file(tmp_path / "nothing", tmp_path / "n.json") is None


@pytest.mark.shared_data
def test_every_bird_minidev_description_becomes_a_comment(
    shared_data: Path, tmp_path: Path
) -> None:
    bird = shared_data / "bird_minidev" / "dev_databases"
    for db in ("student_club", "superhero", "toxicology"):
        target = write_comments_file(bird / db, tmp_path / f"{db}.json")
        assert target is not None
        tables = json.loads(target.read_text())["tables"]
        conn = sqlite3.connect(f"file:{bird / db / db}.sqlite?mode=ro", uri=True)
        real = {r[0].lower() for r in conn.execute("SELECT name FROM sqlite_master")}
        conn.close()
        assert {t.lower() for t in tables} <= real, db
        assert sum(len(t["columns"]) for t in tables.values()) >= 10
    budget = json.loads((tmp_path / "student_club.json").read_text())["tables"]["budget"]
    assert "budgeted" in budget["columns"]["category"]
