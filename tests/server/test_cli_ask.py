"""`sqlsage ask` and `sqlsage chat` as real processes on the builtin model: the JSON shape,
exit codes 0/1/2, sessions continued across processes, the REPL's commands."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.server.cli_process import cli_runner

ASK_KEYS = {
    "answer", "sql", "columns", "rows", "row_count", "truncated", "chart", "session_id", "turn",
    "steps", "usage", "error", "status", "result_ref",
}  # fmt: skip


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = tmp_path_factory.mktemp("ask-data")
    # No provider keys: the missing-key errors must be what a user without them sees.
    run = cli_runner(data, data, timeout=120, drop=("OPENAI_API_KEY", "ANTHROPIC_API_KEY"))
    run.data = data  # type: ignore[attr-defined]
    return run


def _truth(data: Path, sql: str) -> list[list[Any]]:
    with sqlite3.connect(data / "sample.sqlite") as conn:
        return [list(r) for r in conn.execute(sql)]


def test_ask_json_answers_with_sql_rows_and_steps(cli: Any) -> None:
    done = cli("ask", "--json", "How many customers are in Germany?")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == ASK_KEYS
    assert out["status"] == "answered" and out["error"] is None and out["turn"] == 1
    assert "customers" in out["sql"] and "'Germany'" in out["sql"]
    [[count]] = _truth(cli.data, "SELECT COUNT(*) FROM customers WHERE country = 'Germany'")
    assert out["rows"] == [[count]] and out["row_count"] == 1
    assert f"{count:,}" in out["answer"]
    assert [s["name"] for s in out["steps"]][:3] == ["retrieve", "agent", "semantic_search"]
    assert "run_sql" in [s["name"] for s in out["steps"]]
    assert out["usage"]["model_calls"] >= 3


def test_ask_human_output_streams_steps_then_sql_and_answer(cli: Any) -> None:
    done = cli("ask", "Top 3 products by revenue in 2024")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.index("semantic_search") < text.index("run_sql") < text.index("SQL")
    assert "ORDER BY revenue DESC" in text.replace("\n", " ") and "LIMIT 3" in text


def test_ask_continues_a_session_in_a_second_process(cli: Any) -> None:
    first = json.loads(cli("ask", "--json", "What was the total revenue by year?").stdout)
    second = cli("ask", "--json", "--session", first["session_id"], "and only for 2023?")
    assert second.returncode == 0, second.stderr
    out = json.loads(second.stdout)
    assert (out["session_id"], out["turn"]) == (first["session_id"], 2)
    assert "2023-01-01" in out["sql"] and len(out["rows"]) == 1 and out["rows"][0][0] == "2023"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["ask", "--json", ""], "invalid_argument"),
        (["ask", "--json", "x" * 20_000], "invalid_argument"),
        (["ask", "--json", "--model", "foo/bar", "How many orders?"], "model_unavailable"),
        (
            ["ask", "--json", "--model", "anthropic/claude-3-5-haiku-latest", "q?"],
            "model_unavailable",
        ),
        (["ask", "--json", "--db", "nosuch", "How many orders?"], "unknown_database"),
    ],
    ids=["empty", "20k", "unknown-model", "missing-key", "unknown-db"],
)
def test_ask_usage_errors_exit_2_with_the_error_model(cli: Any, args: list[str], code: str) -> None:
    done = cli(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["code"] == code and error["message"] and error["hint"]


def test_missing_key_names_the_variable(cli: Any) -> None:
    done = cli("ask", "--model", "anthropic/claude-3-5-haiku-latest", "How many orders?")
    assert done.returncode == 2
    assert "ANTHROPIC_API_KEY" in done.stdout + done.stderr
    assert "--model builtin" in done.stdout + done.stderr


def test_ask_that_cannot_be_answered_exits_1_with_an_error(cli: Any) -> None:
    done = cli("ask", "--json", "Wie viele Kunden gibt es in Deutschland?")
    assert done.returncode == 1
    out = json.loads(done.stdout)
    assert out["status"] == "refused" and out["sql"] is None
    assert out["error"]["code"] == "unanswerable" and "English" in out["error"]["message"]


def test_chat_repl_commands(cli: Any) -> None:
    script = "\n".join(
        [
            "How many orders were cancelled?",
            "/sql",
            "/bogus",
            "/new",
            "/sql",
            "",
            "/quit",
        ]
    )
    done = cli("chat", stdin=script + "\n")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    [[cancelled]] = _truth(cli.data, "SELECT COUNT(*) FROM orders WHERE status = 'cancelled'")
    assert f"{cancelled:,}" in text
    assert text.count("status = 'cancelled'") >= 2  # shown after the answer and by /sql
    assert "Unknown command '/bogus'" in text
    assert "New session." in text and "No SQL yet." in text


def test_chat_writes_the_last_chart(cli: Any) -> None:
    done = cli("chat", stdin="Revenue by year\n/chart\n/quit\n")
    assert done.returncode == 0, done.stderr
    written = done.stdout.split("Chart written to ", 1)[1].split()[0]
    path = Path(cli.data) / written
    assert path.suffix == ".svg" and path.read_text().lstrip().startswith("<svg")
