"""`sqlsage eval run --model M`: the full agent on every question in a fresh session, scored the
official way, with its cost recorded; a model that fails or hangs is a recorded failure and
the run goes on; the report, the comparison of two runs, and the builtin's floor on its own
question set."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from evals.datasets import SAMPLE_BUILTIN
from evals.report import compare_runs, render_comparison
from evals.runner import EvalOptions, run_agent, run_eval
from server.settings import Settings
from tests.graphs.runs import fake_openai
from tools.errors import SqlsageError

SQLSAGE = str(Path(sys.executable).with_name("sqlsage"))
REPORTED_SAMPLE_CORRECT = 76  # of 84, docs/benchmarks.md (builtin, sample set)


def _records(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [SQLSAGE, "eval", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.slow
def test_builtin_on_its_sample_set_keeps_its_reported_accuracy(tmp_path: Path) -> None:
    out = tmp_path / "run"
    options = EvalOptions(SAMPLE_BUILTIN, "jsonl", out, model="builtin", workers=2)
    summary = asyncio.run(run_agent(options, base=Settings(data_dir=tmp_path / "state")))
    assert summary["n_questions"] == summary["n_scored"] >= 80
    misses = [f"{r['question_id']}: {r['error']}" for r in _records(out) if not r["correct"]]
    assert summary["n_correct"] >= REPORTED_SAMPLE_CORRECT, "\n".join(misses)
    assert set(summary["by_tag"]) >= {"count", "top_n", "glossary_metric"}
    agent = summary["agent"]
    assert agent["n"] == summary["n_questions"]
    assert 0 < agent["latency_ms_p50"] <= agent["latency_ms_p95"]
    assert agent["model_calls_per_question"] >= 2 and agent["tool_calls_per_question"] >= 1
    assert (agent["input_tokens"], agent["cost_usd"]) == (0, 0.0)  # builtin: no tokens
    for record in _records(out):
        assert record["status"] in ("answered", "refused", "failed")
        # An honest refusal is allowed; an answer without SQL that claims success is not.
        assert record["pred_sql"] or record["status"] in ("refused", "failed"), record
    report = (out / "report.md").read_text()
    assert "## By tag" in report and f"({summary['n_correct']} / {summary['n_scored']})" in report


@pytest.mark.shared_data
def test_cli_runs_the_builtin_on_spider_resumes_and_compares(
    shared_data: Path, tmp_path: Path
) -> None:
    spider = shared_data / "spider_dev"
    common = ["--dataset", str(spider), "--format", "spider", "--model", "builtin"]
    first = _cli("run", *common, "--limit", "8", "--out", "a", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["n_questions"], summary["n_scored"], summary["model"]) == (8, 8, "builtin")
    assert "evidence" not in summary  # Spider has none to give or withhold
    records = _records(tmp_path / "a")
    assert sorted(r["index"] for r in records) == list(range(8))
    assert records[0]["question"] == "How many singers do we have?" and records[0]["correct"]
    assert all(r["latency_ms"] > 0 and r["model_calls"] >= 1 for r in records)

    # Resumable: a second run over 12 questions only asks the 4 new ones.
    more = _cli("run", *common, "--limit", "12", "--out", "a", "--json", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert sorted(r["index"] for r in _records(tmp_path / "a")) == list(range(12))
    assert json.loads(more.stdout)["n_scored"] == 12

    # A second run where question 0 is withheld from the agent's database: compare shows it.
    _cli("run", *common, "--limit", "12", "--out", "b", "--json", cwd=tmp_path)
    b_results = tmp_path / "b" / "results.jsonl"
    flipped = [json.loads(x) for x in b_results.read_text().splitlines()]
    flipped[0].update(correct=False, error={"code": "wrong_result", "message": "edited"})
    b_results.write_text("".join(json.dumps(r) + "\n" for r in flipped))
    summary_b = json.loads((tmp_path / "b" / "summary.json").read_text())
    summary_b["n_correct"] -= 1
    summary_b["execution_accuracy"] = summary_b["n_correct"] / summary_b["n_scored"]
    (tmp_path / "b" / "summary.json").write_text(json.dumps(summary_b))
    compared = _cli("compare", "a", "b", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert "right -> wrong: 1" in compared.stdout and "wrong -> right: 0" in compared.stdout
    assert "How many singers do we have?" in compared.stdout
    as_json = json.loads(_cli("compare", "a", "b", "--json", cwd=tmp_path).stdout)
    delta = as_json["metrics"]["execution_accuracy"]["delta"]
    assert delta == pytest.approx(-1 / 12)
    assert [e["question_id"] for e in as_json["right_to_wrong"]] == ["0"]


@pytest.mark.filterwarnings("ignore:Items? .* on TypedDict class .*ReadOnly:UserWarning")
def test_a_real_provider_through_litellm_records_tokens_cost_and_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dummy-0000000000")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    fake = fake_openai()
    gold = "SELECT COUNT(*) FROM customers"
    dataset = _jsonl(
        tmp_path / "set.jsonl",
        [
            {"id": "ok", "question": "How many customers?", "db": "sample", "gold_sql": gold},
            {"id": "err", "question": "How many orders?", "db": "sample",
             "gold_sql": "SELECT COUNT(*) FROM orders"},
            {"id": "hang", "question": "How many products?", "db": "sample",
             "gold_sql": "SELECT COUNT(*) FROM products"},
            {"id": "after", "question": "How many customers again?", "db": "sample",
             "gold_sql": gold, "tags": ["count"]},
        ],
    )  # fmt: skip
    with fake.fake_openai_server() as server:
        run_gold = fake.Reply(tool_calls=(fake.ToolCall("run_sql", {"sql": gold}),))
        server.script(
            run_gold,
            fake.Reply("Here is the number of customers."),
            fake.Fail(400, message="This model cannot do that"),
            fake.Hang(3.0),
            run_gold,
            fake.Reply("Here it is."),
        )
        settings = Settings(
            data_dir=tmp_path / "state", model_api_base=server.url, model_timeout_s=30
        )
        options = EvalOptions(
            dataset, "jsonl", tmp_path / "out", model="openai/gpt-4o-mini", turn_timeout_s=1.5
        )
        summary = asyncio.run(run_agent(options, base=settings))
        # The same provider path from the command line, in its own process.
        server.script(run_gold, fake.Reply("Here is the number of customers."))
        env = {
            **os.environ,
            "SQLSAGE_MODEL_API_BASE": server.url,
            "SQLSAGE_DATA_DIR": str(tmp_path / "state"),
        }
        done = subprocess.run(
            [SQLSAGE, "eval", "run", "--dataset", str(dataset), "--format", "jsonl",
             "--model", "openai/gpt-4o-mini", "--ids", "ok", "--out", "cli", "--json"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    from_cli = json.loads(done.stdout)
    assert (from_cli["n_correct"], from_cli["agent"]["input_tokens"]) == (1, 22)
    assert from_cli["agent"]["cost_usd"] > 0 and from_cli["model"] == "openai/gpt-4o-mini"
    records = {r["question_id"]: r for r in _records(tmp_path / "out")}
    ok = records["ok"]
    assert (ok["correct"], ok["pred_sql"], ok["status"]) == (True, gold, "answered")
    assert (ok["model_calls"], ok["tool_calls"]) == (2, 1)
    assert (ok["input_tokens"], ok["output_tokens"]) == (22, 14)  # 2 replies of 11 + 7
    assert ok["cost_usd"] > 0
    err = records["err"]
    assert err["correct"] is False and err["pred_sql"] is None
    assert "cannot do that" in err["error"]["message"], err["error"]
    hang = records["hang"]
    assert hang["correct"] is False and hang["error"]["code"] == "timeout"
    assert records["after"]["correct"] is True  # the run went on after both failures
    assert (summary["n_scored"], summary["n_correct"]) == (4, 2)
    assert summary["agent"]["input_tokens"] >= 44 and summary["agent"]["cost_usd"] > 0
    assert summary["errors_by_code"]["timeout"] == 1
    report = (tmp_path / "out" / "report.md").read_text()
    assert "The 2 worst failures" in report and "How many orders?" in report


def test_bad_model_and_options_are_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    dataset = _jsonl(
        tmp_path / "set.jsonl",
        [{"id": "a", "question": "How many customers?", "db": "sample", "gold_sql": "SELECT 1"}],
    )
    out = tmp_path / "out"
    base = Settings(data_dir=tmp_path / "state")
    with pytest.raises(SqlsageError) as raised:
        asyncio.run(run_agent(EvalOptions(dataset, "jsonl", out, model="openai/gpt-4o"), base=base))
    assert "OPENAI_API_KEY" in (raised.value.hint or "") + raised.value.message
    assert not out.exists()
    for bad, message in (
        ({"workers": 0}, "--workers is 0"),
        ({"turn_timeout_s": 0}, "--turn-timeout is 0 seconds"),
        ({"timeout_s": -1}, "--timeout is -1 seconds"),
    ):
        options = EvalOptions(dataset, "jsonl", out, model="builtin", **bad)  # type: ignore[arg-type]
        with pytest.raises(SqlsageError, match=message):
            asyncio.run(run_agent(options, base=base))
    out.mkdir()
    busy = EvalOptions(dataset, "jsonl", out, model="builtin")
    with (
        FileLock(str(out / ".run.lock")),  # another run holds the folder
        pytest.raises(SqlsageError, match="Another run is writing to"),
    ):
        asyncio.run(run_agent(busy, base=base))
    assert sorted(p.name for p in out.iterdir()) == [".run.lock"]  # nothing else written
    shutil.rmtree(out)
    with pytest.raises(SqlsageError, match="Pass exactly one of --predictions FILE and --model"):
        run_eval(EvalOptions(dataset, "jsonl", out))
    with pytest.raises(SqlsageError, match="--predictions and --model were both given"):
        run_eval(EvalOptions(dataset, "jsonl", out, model="builtin", predictions=dataset))
    assert not out.exists()
    done = _cli(
        "run", "--dataset", str(dataset), "--format", "jsonl", "--model", "nosuch/model",
        "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "nosuch/model" in done.stderr
    assert not out.exists()


def test_compare_refuses_folders_that_are_not_runs_or_differ(tmp_path: Path) -> None:
    with pytest.raises(SqlsageError, match="is not an eval run folder"):
        compare_runs(tmp_path / "a", tmp_path / "b")
    for name, dataset in (("a", "one.json"), ("b", "two.json")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.jsonl").write_text("")
        (tmp_path / name / "summary.json").write_text(json.dumps({"dataset": dataset}))
    with pytest.raises(SqlsageError, match=r"different datasets: 'one\.json' and 'two\.json'"):
        compare_runs(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b" / "summary.json").write_text("{not json")
    with pytest.raises(SqlsageError, match=r"summary\.json' is not valid JSON"):
        compare_runs(tmp_path / "a", tmp_path / "b")
    done = _cli("compare", "a", "missing", cwd=tmp_path)
    assert done.returncode == 2 and "'missing' is not an eval run folder" in done.stderr
    same = compare_runs(tmp_path / "a", tmp_path / "a")
    assert same["n_common"] == 0 and "right -> wrong: 0" in render_comparison(same)


@pytest.mark.slow
def test_ctrl_c_keeps_every_finished_question_and_a_rerun_finishes(tmp_path: Path) -> None:
    args = [
        SQLSAGE, "eval", "run", "--dataset", str(SAMPLE_BUILTIN), "--format", "jsonl",
        "--model", "builtin", "--out", "run",
    ]  # fmt: skip
    results = tmp_path / "run" / "results.jsonl"
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.is_file() and len(results.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"Stopped. Every question finished so far is in" in err and b"Traceback" not in err
    kept = _records(tmp_path / "run")  # every line whole
    assert 5 <= len(kept) < 84
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    indices = [r["index"] for r in _records(tmp_path / "run")]
    assert sorted(indices) == list(range(84))  # nothing asked twice, nothing lost
    assert [r["index"] for r in _records(tmp_path / "run")][: len(kept)] == [
        r["index"] for r in kept
    ]


def test_the_agent_queries_the_file_the_gold_sql_is_scored_on(tmp_path: Path) -> None:
    from evals.agent_predict import agent_db_name, eval_settings
    from evals.datasets import load_dataset
    from server.settings import DatabaseSettings

    spider = tmp_path / "spider"
    (spider / "database" / "shop").mkdir(parents=True)
    (spider / "database" / "shop" / "shop.sqlite").touch()
    (spider / "dev.json").write_text(
        json.dumps([{"question": "q", "query": "SELECT 1", "db_id": "shop"}])
    )
    mine = tmp_path / "mine.sqlite"
    base = Settings(
        data_dir=tmp_path, databases={"shop": DatabaseSettings(url=f"sqlite:///{mine}")}
    )
    settings = eval_settings(load_dataset(spider, "spider"), tmp_path, base)
    # A configured database of the same name gives way to the dataset's file.
    assert settings.databases["shop"].url == f"sqlite:///{spider / 'database/shop/shop.sqlite'}"

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.sqlite").touch()
    dataset = _jsonl(
        tmp_path / "set.jsonl",
        [
            {"id": n, "question": "q", "db": f"sqlite:///{tmp_path / n / 'x.sqlite'}",
             "gold_sql": "SELECT 1"}
            for n in ("a", "b")
        ],
    )  # fmt: skip
    loaded = load_dataset(dataset, "jsonl")
    names = [agent_db_name(loaded, item) for item in loaded.items]
    assert len(set(names)) == 2 and all(n.startswith("eval_x_") for n in names)
    urls = eval_settings(loaded, tmp_path, Settings(data_dir=tmp_path)).databases
    assert {urls[n].url for n in names} == {
        f"sqlite:///{tmp_path / n / 'x.sqlite'}" for n in ("a", "b")
    }


@pytest.mark.shared_data
def test_bird_runs_give_the_evidence_unless_told_not_to(shared_data: Path, tmp_path: Path) -> None:
    from evals.agent_predict import question_text
    from evals.datasets import load_dataset

    path = shared_data / "bird_minidev" / "mini_dev_sqlite.json"
    item = next(i for i in load_dataset(path, "bird").items if i.evidence and i.db_path)
    assert question_text(item, evidence=True) == f"{item.question}\nHint: {item.evidence}"
    assert question_text(item, evidence=False) == item.question
    assert item.question_id is not None
    for flag, expected in (([], True), (["--no-evidence"], False)):
        out = f"run{int(expected)}"
        done = _cli(
            "run", "--dataset", str(path), "--format", "bird", "--model", "builtin",
            "--ids", item.question_id, "--out", out, "--json", *flag, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["evidence"] is expected and summary["n_scored"] == 1
        report = (tmp_path / out / "report.md").read_text()
        assert ("(with evidence)" if expected else "(without evidence)") in report
