"""The bundled sample_builtin.jsonl set, the JSONL loader's errors and the Spider loader."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from evals.datasets import (
    SAMPLE_BUILTIN,
    SHAPES,
    EvalQuestion,
    load_jsonl,
    load_spider,
    spider_db_path,
)
from evals.metrics import execution_match
from tools.errors import INVALID_ARGUMENT, NOT_FOUND, SqlsageError
from tools.readonly import open_sqlite_read_only

SAMPLE_QUESTIONS = load_jsonl(SAMPLE_BUILTIN)
TOP_N = [q for q in SAMPLE_QUESTIONS if q.shape == "top_n"]


@pytest.fixture(scope="module")
def sample_conn(sample_path: Path) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(open_sqlite_read_only(str(sample_path))) as conn:
        yield conn


# --- sample_builtin.jsonl


def test_sample_builtin_covers_every_shape() -> None:
    shapes = Counter(q.shape for q in SAMPLE_QUESTIONS)
    assert len(SAMPLE_QUESTIONS) >= 70
    assert set(shapes) == set(SHAPES)
    assert min(shapes.values()) >= 5, shapes
    assert len({q.id for q in SAMPLE_QUESTIONS}) == len(SAMPLE_QUESTIONS)
    assert len({q.question.lower() for q in SAMPLE_QUESTIONS}) == len(SAMPLE_QUESTIONS)
    assert {q.db for q in SAMPLE_QUESTIONS} == {"sample"}


@pytest.mark.parametrize("question", SAMPLE_QUESTIONS, ids=lambda q: q.id)
def test_sample_gold_sql_returns_rows(
    question: EvalQuestion, sample_conn: sqlite3.Connection
) -> None:
    rows = sample_conn.execute(question.sql).fetchall()
    assert rows, question.sql
    assert all(value is not None for row in rows for value in row), rows[:5]
    assert execution_match(sample_conn, question.sql, question.sql).match


@pytest.mark.parametrize("question", TOP_N, ids=lambda q: q.id)
def test_top_n_gold_has_no_ties_up_to_the_cut(
    question: EvalQuestion, sample_conn: sqlite3.Connection
) -> None:
    """The order is compared row by row: ties inside the top N or at its cut would be luck."""
    tree = sqlglot.parse_one(question.sql, read="sqlite")
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


# --- load_jsonl errors


def _write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = '{"id": "q1", "question": "How many?", "sql": "SELECT 1", "db": "sample"}'


def test_load_jsonl_reads_optional_fields_and_skips_blank_lines(tmp_path: Path) -> None:
    line = '{"id": "q2", "question": "Q?", "sql": "SELECT 2", "db": "d", "evidence": "e"}'
    path = _write(tmp_path, GOOD, "", line)
    assert load_jsonl(path) == [
        EvalQuestion(id="q1", question="How many?", sql="SELECT 1", db="sample"),
        EvalQuestion(id="q2", question="Q?", sql="SELECT 2", db="d", evidence="e"),
    ]


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ('{"id": "q2", "question": "Q?", "sql": ', "invalid JSON"),
        ('{"id": "q2", "sql": "SELECT 2", "db": "sample"}', 'missing "question" field'),
        ('{"id": "q2", "question": "", "sql": "SELECT 2", "db": "s"}', '"question" must be'),
        ('{"id": "q2", "question": "Q?", "sql": 2, "db": "sample"}', '"sql" must be'),
        ('["q2", "Q?"]', "expected a JSON object"),
        ('{"id": "q2", "qestion": "Q?", "sql": "SELECT 2", "db": "s"}', "unknown field 'qestion'"),
        (GOOD, "duplicate id 'q1' (first used on line 1)"),
    ],
)
def test_load_jsonl_errors_name_file_and_line(tmp_path: Path, bad_line: str, problem: str) -> None:
    path = _write(tmp_path, GOOD, bad_line)
    with pytest.raises(SqlsageError) as raised:
        load_jsonl(path)
    assert raised.value.code == INVALID_ARGUMENT
    assert raised.value.message.startswith(f"{path}:2: ")
    assert problem in raised.value.message


def test_load_jsonl_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SqlsageError, match="Cannot read question file") as raised:
        load_jsonl(tmp_path / "absent.jsonl")
    assert raised.value.code == INVALID_ARGUMENT


# --- Spider


def test_load_spider_rejects_unknown_split_and_bad_db_id(tmp_path: Path) -> None:
    with pytest.raises(
        SqlsageError, match=re.escape("Unknown Spider split 'test'. Known: dev, train.")
    ):
        load_spider(tmp_path, split="test")
    with pytest.raises(SqlsageError, match="Not a plain name") as raised:
        spider_db_path(tmp_path, "../secrets")
    assert raised.value.code == INVALID_ARGUMENT


def test_load_spider_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SqlsageError, match=re.escape("dev.json")) as raised:
        load_spider(tmp_path)
    assert raised.value.code == NOT_FOUND


@pytest.mark.shared_data
def test_load_spider_dev(shared_data: Path) -> None:
    spider = shared_data / "spider_dev"
    questions = load_spider(spider)
    assert len(questions) == 1034
    first = questions[0]
    assert first.id == "spider-dev-0000"
    assert first.db == "concert_singer"
    assert first.question == "How many singers do we have?"
    assert first.sql == "SELECT count(*) FROM singer"
    assert first.shape is None
    assert [q.id for q in load_spider(spider, limit=3)] == [q.id for q in questions[:3]]
    assert load_spider(spider, limit=0) == []


@pytest.mark.shared_data
def test_load_spider_can_skip_questions_without_a_database(shared_data: Path) -> None:
    spider = shared_data / "spider_dev"
    questions = load_spider(spider, skip_missing_db=True)
    # provenance.json: wta_1 (62 questions) is absent from the shared copy.
    assert len(questions) == 972
    assert "wta_1" not in {q.db for q in questions}
    with pytest.raises(SqlsageError, match="Spider database 'wta_1' not found") as raised:
        spider_db_path(spider, "wta_1")
    assert raised.value.code == NOT_FOUND


@pytest.mark.shared_data
def test_spider_gold_matches_itself(shared_data: Path) -> None:
    spider = shared_data / "spider_dev"
    for question in load_spider(spider, limit=20, skip_missing_db=True):
        path = spider_db_path(spider, question.db)
        assert path == spider / "database" / question.db / f"{question.db}.sqlite"
        result = execution_match(path, question.sql, question.sql)
        assert result.match, (question.id, result.reason)
