"""`sqlsage eval run --predictions`: the official numbers on Spider dev and BIRD mini-dev, a
resumable results file, and every bad input with a clear error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from evals.runner import EvalOptions, score_predictions
from tools.errors import SqlsageError

SQLSAGE = str(Path(sys.executable).with_name("sqlsage"))


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [SQLSAGE, "eval", "run", *args], capture_output=True, text=True, timeout=timeout
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


def _gold_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.shared_data
def test_spider_dev_gold_predictions_score_100_percent_in_under_a_minute(
    shared_data: Path, tmp_path: Path
) -> None:
    spider = shared_data / "spider_dev"
    predictions = tmp_path / "pred.sql"
    predictions.write_text((spider / "dev_gold.sql").read_text(encoding="utf-8"))
    started = time.monotonic()
    done = _cli(
        "--dataset", str(spider), "--format", "spider", "--predictions", str(predictions),
        "--out", str(tmp_path / "run"), "--workers", "2", "--json",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["n_scored"], summary["n_correct"], summary["n_skipped"]) == (972, 972, 62)
    assert summary["execution_accuracy"] == 1.0 and summary["missing_databases"] == ["wta_1"]
    assert elapsed < 60
    records = [json.loads(x) for x in _gold_lines(tmp_path / "run" / "results.jsonl")]
    assert sorted(r["index"] for r in records) == list(range(1034))
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == summary


@pytest.mark.shared_data
def test_bird_minidev_gold_predictions_and_difficulty(shared_data: Path, tmp_path: Path) -> None:
    bird = shared_data / "bird_minidev"
    done = _cli(
        "--dataset", str(bird / "mini_dev_sqlite.json"), "--format", "bird",
        "--predictions", str(bird / "mini_dev_sqlite_gold.sql"), "--out", str(tmp_path), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["n_scored"], summary["n_correct"], summary["n_skipped"]) == (140, 140, 360)
    assert {k: v["n"] for k, v in summary["by_difficulty"].items()} == {
        "simple": 40, "moderate": 65, "challenging": 35, "total": 140,
    }  # fmt: skip


@pytest.mark.shared_data
def test_faulty_predictions_are_counted_and_a_crashed_run_resumes(
    shared_data: Path, tmp_path: Path
) -> None:
    spider = shared_data / "spider_dev"
    lines = _gold_lines(spider / "dev_gold.sql")[:40]
    faulty = {3: "SELECT 1", 7: "SELEC nonsense", 11: lines[11].replace("count(*)", "count(*) + 1")}
    predictions = tmp_path / "pred.sql"
    full = _gold_lines(spider / "dev_gold.sql")
    for index, sql in faulty.items():
        full[index] = sql
    predictions.write_text("\n".join(full) + "\n")
    out = tmp_path / "run"
    options = EvalOptions(spider, "spider", out, predictions=predictions, limit=40, workers=2)
    first = score_predictions(options)
    assert (first["n_scored"], first["n_correct"]) == (40, 37)
    # A crash mid-write: the last record cut in half, two more never written.
    results = out / "results.jsonl"
    kept = [*_gold_lines(results)[:-3], '{"index": 5, "quest']
    results.write_text("\n".join(kept) + "\n")
    again = score_predictions(options)
    assert (again["n_scored"], again["n_correct"], again["n_pending"]) == (40, 37, 0)
    errors = {json.loads(x)["index"]: json.loads(x)["error"] for x in _gold_lines(results)[-3:]}
    assert len(errors) == 3
    wrong = [json.loads(x) for x in _gold_lines(results) if '"correct": false' in x]
    assert {r["index"] for r in wrong} == set(faulty)
    assert any("prediction failed" in r["error"]["message"] for r in wrong)


def _tiny_spider(tmp_path: Path, shared_data: Path, items: list[dict[str, Any]]) -> Path:
    folder = tmp_path / "tiny"
    (folder / "database" / "concert_singer").mkdir(parents=True)
    shutil.copy(
        shared_data / "spider_dev" / "database" / "concert_singer" / "concert_singer.sqlite",
        folder / "database" / "concert_singer" / "concert_singer.sqlite",
    )
    (folder / "dev.json").write_text(json.dumps(items))
    return folder


@pytest.mark.shared_data
def test_a_failing_gold_is_a_dataset_error_and_a_hanging_prediction_times_out(
    shared_data: Path, tmp_path: Path
) -> None:
    items = [
        {"question": "q0", "query": "SELECT COUNT(*) FROM singer", "db_id": "concert_singer"},
        {"question": "q1", "query": "SELECT * FROM no_such_table", "db_id": "concert_singer"},
        {"question": "q2", "query": "SELECT 1", "db_id": "concert_singer"},
        {"question": "q3", "query": "SELECT name FROM singer", "db_id": "concert_singer"},
    ]
    folder = _tiny_spider(tmp_path, shared_data, items)
    hang = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
    predictions = tmp_path / "pred.sql"
    predictions.write_text(
        f"SELECT COUNT(*) FROM singer\nSELECT 1\n{hang}\nSELECT name FROM singer\n"
    )
    started = time.monotonic()
    summary = score_predictions(
        EvalOptions(folder, "spider", tmp_path / "out", predictions=predictions, timeout_s=1.0)
    )
    assert time.monotonic() - started < 15
    assert (summary["n_scored"], summary["n_correct"], summary["n_dataset_errors"]) == (3, 2, 1)
    assert summary["execution_accuracy"] == pytest.approx(2 / 3)
    records = [json.loads(x) for x in _gold_lines(tmp_path / "out" / "results.jsonl")]
    by_index = {r["index"]: r for r in records}
    assert by_index[1]["correct"] is None and by_index[1]["error"]["code"] == "dataset_error"
    assert "no such table" in by_index[1]["error"]["message"]
    assert by_index[2]["correct"] is False and by_index[2]["valid_sql"] is False
    assert by_index[2]["error"] == {
        "code": "timeout",
        "message": "prediction failed: timed out after 1 s",
    }
    assert summary["errors_by_code"] == {"dataset_error": 1, "timeout": 1}


@pytest.mark.shared_data
def test_bad_inputs_say_what_was_wrong(shared_data: Path, tmp_path: Path) -> None:
    spider = shared_data / "spider_dev"
    bird = shared_data / "bird_minidev"
    gold = spider / "dev_gold.sql"
    short = tmp_path / "short.sql"
    short.write_text("SELECT 1\n")
    blank = tmp_path / "blank.sql"
    lines = _gold_lines(gold)
    lines[2] = ""
    blank.write_text("\n".join(lines) + "\n")
    cases = [
        (["--dataset", str(tmp_path / "nope"), "--format", "spider", "--predictions", str(gold)],
         "does not exist"),
        (["--dataset", str(bird / "mini_dev_sqlite.json"), "--format", "spider",
          "--predictions", str(gold)], "has no text field 'query'"),
        (["--dataset", str(spider), "--format", "bird", "--predictions", str(gold)], "is a folder"),
        (["--dataset", str(spider), "--format", "csv", "--predictions", str(gold)],
         "Unknown dataset format 'csv'"),
        (["--dataset", str(spider), "--format", "spider", "--predictions", str(short)],
         "has 1 lines; the dataset has 1034 questions"),
        (["--dataset", str(spider), "--format", "spider", "--predictions", str(blank)],
         "blank line at line 3"),
        (["--dataset", str(spider), "--format", "spider", "--predictions", str(tmp_path / "x")],
         "Cannot read predictions file"),
        (["--dataset", str(spider), "--format", "spider"], "Pass exactly one of --predictions FILE and --model M"),
        (["--dataset", str(spider), "--format", "spider", "--predictions", str(gold),
          "--ids", "999999"], "--ids names questions the dataset does not have"),
        (["--dataset", str(spider), "--format", "spider", "--predictions", str(gold),
          "--workers", "0"], "--workers is 0"),
    ]  # fmt: skip
    for args, needle in cases:
        done = _cli(*args, "--out", str(tmp_path / "out"))
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert needle in done.stderr, (needle, done.stderr)
        assert "Hint:" in done.stderr or needle.startswith(("--ids", "--workers", "Cannot"))


@pytest.mark.shared_data
def test_two_runs_on_one_output_folder_are_refused(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    spider = shared_data / "spider_dev"
    with FileLock(str(out / ".run.lock")):  # another run holds the folder
        with pytest.raises(SqlsageError, match="Another run is writing to"):
            score_predictions(
                EvalOptions(spider, "spider", out, predictions=spider / "dev_gold.sql", limit=3)
            )
        done = _cli(
            "--dataset", str(spider), "--format", "spider",
            "--predictions", str(spider / "dev_gold.sql"), "--out", str(out), "--limit", "3",
        )  # fmt: skip
        assert done.returncode == 2 and "Another run is writing to" in done.stderr
    assert not (out / "results.jsonl").exists()


@pytest.mark.shared_data
def test_jsonl_datasets_and_bird_json_predictions(shared_data: Path, tmp_path: Path) -> None:
    db = shared_data / "spider_dev" / "database" / "concert_singer" / "concert_singer.sqlite"
    rows = [
        {"id": "a", "question": "How many singers?", "db": f"sqlite:///{db}",
         "gold_sql": "SELECT COUNT(*) FROM singer", "tags": ["count"]},
        {"id": "b", "question": "Names?", "db": f"sqlite:///{db}",
         "gold_sql": "SELECT name FROM singer", "tags": ["list"]},
        {"id": "c", "question": "Elsewhere?", "db": "sqlite:////nowhere/x.sqlite",
         "gold_sql": "SELECT 1"},
    ]  # fmt: skip
    dataset = tmp_path / "set.jsonl"
    dataset.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    predictions = tmp_path / "pred.json"
    predictions.write_text(
        json.dumps(
            {
                "0": "SELECT COUNT(*) FROM singer\t----- bird -----\tconcert_singer",
                "1": "SELECT song_name FROM singer\t----- bird -----\tconcert_singer",
                "2": "SELECT 1\t----- bird -----\tx",
            }
        )
    )
    summary = score_predictions(
        EvalOptions(
            dataset, "jsonl", tmp_path / "out", predictions=predictions, ids=["a", "b", "c"]
        )
    )
    assert (summary["n_scored"], summary["n_correct"], summary["n_skipped"]) == (2, 1, 1)
    records = [json.loads(x) for x in _gold_lines(tmp_path / "out" / "results.jsonl")]
    assert {r["question_id"]: r["tags"] for r in records} == {
        "a": ["count"],
        "b": ["list"],
        "c": [],
    }
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "db": "x"}\n')
    with pytest.raises(SqlsageError, match="line 1 has no text field 'gold_sql'"):
        score_predictions(EvalOptions(bad, "jsonl", tmp_path / "o2", predictions=predictions))
