"""Spider's and BIRD's execution match with their official semantics, on their real databases.

The official evaluators cannot be vendored; the verdict each would give is pinned per case in
tests/fixtures/evals/*.jsonl (gold, gold with deliberate faults: wrong column, columns swapped,
row order with and without ORDER BY, duplicates, DISTINCT, wrong aggregation, extra LIMIT,
empty results, types, failing SQL). Then every gold query of Spider dev and BIRD mini-dev is
scored against itself: 100 %, as the official scripts give on gold predictions.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from evals import bird_exec, metrics, spider_exec
from evals.spider_exec import GoldFailed, prediction_sql, remove_distinct

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "evals"


def _cases(name: str) -> list[dict[str, Any]]:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


SPIDER_CASES = _cases("spider_exec_cases.jsonl")
BIRD_CASES = _cases("bird_exec_cases.jsonl")


def _spider_db(shared_data: Path, db: str) -> Path:
    return shared_data / "spider_dev" / "database" / db / f"{db}.sqlite"


def _bird_db(shared_data: Path, db: str) -> Path:
    return shared_data / "bird_minidev" / "dev_databases" / db / f"{db}.sqlite"


@pytest.mark.shared_data
@pytest.mark.parametrize("case", SPIDER_CASES, ids=[c["id"] for c in SPIDER_CASES])
def test_spider_verdicts_match_the_official_semantics(
    shared_data: Path, case: dict[str, Any]
) -> None:
    db = _spider_db(shared_data, case["db"])
    predicted = prediction_sql(case["pred"])
    verdict = spider_exec.exec_match(db, predicted, case["gold"])
    assert verdict.correct is case["expect"], (case["why"], verdict.reason)
    if not verdict.correct:
        assert verdict.reason
    if "keep_distinct_expect" in case:
        kept = spider_exec.exec_match(db, predicted, case["gold"], keep_distinct=True)
        assert kept.correct is case["keep_distinct_expect"], case["why"]


@pytest.mark.shared_data
@pytest.mark.parametrize("case", BIRD_CASES, ids=[c["id"] for c in BIRD_CASES])
def test_bird_verdicts_match_the_official_semantics(
    shared_data: Path, case: dict[str, Any]
) -> None:
    verdict = bird_exec.exec_match(_bird_db(shared_data, case["db"]), case["pred"], case["gold"])
    assert verdict.correct is case["expect"], (case["why"], verdict.reason)


def test_remove_distinct_works_on_sqlparse_tokens() -> None:
    assert remove_distinct("SELECT DISTINCT a FROM t") == "SELECT  a FROM t"
    assert remove_distinct("select count(distinct a) from t") == "select count( a) from t"
    assert remove_distinct("SELECT 'distinct' FROM t") == "SELECT 'distinct' FROM t"
    assert remove_distinct("SELECT distinctive FROM t") == "SELECT distinctive FROM t"


def test_result_eq_edge_cases() -> None:
    eq = spider_exec.result_eq
    assert eq([], [], order_matters=True)
    assert not eq([(1,)], [], order_matters=False)
    assert not eq([(1, 2)], [(1,)], order_matters=False)  # column counts differ
    assert eq([(1, "a"), (2, "b")], [("b", 2), ("a", 1)], order_matters=False)
    assert not eq([(1, "a"), (2, "b")], [("b", 2), ("a", 1)], order_matters=True)
    assert eq([(1, "a"), (2, "b")], [("a", 1), ("b", 2)], order_matters=True)
    assert not eq([(1,), (1,), (2,)], [(1,), (2,), (2,)], order_matters=False)  # bags


@pytest.mark.shared_data
def test_a_failing_gold_query_is_the_datasets_error(shared_data: Path) -> None:
    db = _spider_db(shared_data, "concert_singer")
    with pytest.raises(GoldFailed, match="no such table"):
        spider_exec.exec_match(db, "SELECT 1", "SELECT * FROM no_such_table")
    with pytest.raises(GoldFailed):
        bird_exec.exec_match(_bird_db(shared_data, "superhero"), "SELECT 1", "SELEC 1")


@pytest.mark.shared_data
def test_a_hanging_prediction_is_cut_by_the_timeout(shared_data: Path) -> None:
    db = _spider_db(shared_data, "concert_singer")
    forever = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
    )
    started = time.monotonic()
    verdict = spider_exec.exec_match(db, forever, "SELECT 1", timeout_s=0.5)
    assert not verdict.correct and verdict.timed_out and not verdict.ran
    assert verdict.reason == "prediction failed: timed out after 0.5 s"
    assert time.monotonic() - started < 5


def test_bird_accuracy_per_difficulty() -> None:
    table = metrics.by_difficulty(
        [("simple", True), ("simple", False), ("moderate", True), ("challenging", False)]
    )
    assert table["simple"] == {"n": 2, "correct": 1, "accuracy": 0.5}
    assert table["total"]["accuracy"] == 0.5 and list(table)[-1] == "total"


@pytest.mark.shared_data
@pytest.mark.slow
def test_every_spider_dev_gold_query_matches_itself(shared_data: Path) -> None:
    questions = json.loads((shared_data / "spider_dev" / "dev.json").read_text())
    present = [q for q in questions if _spider_db(shared_data, q["db_id"]).is_file()]
    assert len(present) == 972
    wrong = []
    for q in present:
        db = _spider_db(shared_data, q["db_id"])
        verdict = spider_exec.exec_match(db, q["query"], q["query"])
        if not verdict.correct:
            wrong.append((q["query"], verdict.reason))
    assert wrong == []


@pytest.mark.shared_data
def test_every_bird_minidev_gold_query_matches_itself(shared_data: Path) -> None:
    questions = json.loads((shared_data / "bird_minidev" / "mini_dev_sqlite.json").read_text())
    present = [q for q in questions if _bird_db(shared_data, q["db_id"]).is_file()]
    assert len(present) == 140
    wrong = [
        q["SQL"]
        for q in present
        if not bird_exec.exec_match(_bird_db(shared_data, q["db_id"]), q["SQL"], q["SQL"]).correct
    ]
    assert wrong == []


@pytest.mark.shared_data
@pytest.mark.parametrize("attempt", ["VACUUM INTO '{dir}/copy.db'", "ATTACH '{dir}/new.db' AS x"])
def test_a_prediction_can_write_no_file(shared_data: Path, tmp_path: Path, attempt: str) -> None:
    db = _spider_db(shared_data, "concert_singer")
    verdict = spider_exec.exec_match(db, attempt.format(dir=tmp_path), "SELECT 1")
    assert not verdict.correct and "prediction failed" in (verdict.reason or "")
    assert list(tmp_path.iterdir()) == []


def _tiny_db(path: Path, rows: list[tuple[int, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER, name TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", rows)
    conn.commit()
    conn.close()
    return path


def test_spider_is_right_only_when_right_on_every_test_suite_database(tmp_path: Path) -> None:
    main = _tiny_db(tmp_path / "db" / "db.sqlite", [(1, "a"), (2, "b")])
    gold, lucky = "SELECT name FROM t WHERE id > 1", "SELECT name FROM t WHERE name = 'b'"
    assert spider_exec.exec_match(main, lucky, gold, suite=True).correct
    # A distilled database beside it tells the two apart, as test-suite-sql-eval's would.
    _tiny_db(tmp_path / "db" / "db_distilled_1.sqlite", [(1, "b"), (3, "c")])
    verdict = spider_exec.exec_match(main, lucky, gold, suite=True)
    assert not verdict.correct
    assert verdict.reason == "different values (on test-suite database db_distilled_1.sqlite)"
    assert spider_exec.exec_match(main, gold, gold, suite=True).correct
    assert spider_exec.exec_match(main, lucky, gold).correct  # one database: suite off
    assert [p.name for p in spider_exec.suite_paths(main)] == [
        "db.sqlite",
        "db_distilled_1.sqlite",
    ]


def test_text_that_is_not_utf8_spider_ignores_bird_fails(tmp_path: Path) -> None:
    path = _tiny_db(tmp_path / "x.sqlite", [])
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO t VALUES (1, CAST(x'ff41' AS TEXT))")
    conn.commit()
    conn.close()
    query = "SELECT name FROM t"
    assert spider_exec.run_query(path, query, 5) == [("A",)]  # errors="ignore"
    assert spider_exec.exec_match(path, query, query).correct
    with pytest.raises(GoldFailed, match="decode"):  # BIRD's plain connection raises
        bird_exec.exec_match(path, query, query)
    assert not bird_exec.exec_match(path, query, "SELECT id FROM t").ran
