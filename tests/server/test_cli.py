"""The `sqlsage` CLI as a real process: exit codes, JSON shapes, and clear errors (no tracebacks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.server.cli_process import cli_runner


@pytest.fixture()
def cli(sample_path: Path, tmp_path: Path) -> Any:
    return cli_runner(sample_path.parent, tmp_path)


def test_validate_json_valid(cli: Any) -> None:
    done = cli("sql", "validate", "--json", "select name from regions")
    assert done.returncode == 0
    payload = json.loads(done.stdout)
    assert payload == {
        "valid": True,
        "sql": "SELECT name FROM regions LIMIT 1000",
        "dialect": "sqlite",
        "tables": ["regions"],
        "errors": [],
    }


def test_validate_json_rejected_points_at_the_column(cli: Any) -> None:
    done = cli("sql", "validate", "--json", "SELECT nme FROM regions")
    assert done.returncode == 1
    error = json.loads(done.stdout)["errors"][0]
    assert error["code"] == "unknown_column" and error["hint"] == "Did you mean 'name'?"
    assert (error["line"], error["col"]) == (1, 8)
    assert error["did_you_mean"] == "name"
    assert set(error) == {"code", "message", "hint", "line", "col", "did_you_mean"}


def test_validate_human_and_from_dialect(cli: Any) -> None:
    done = cli(
        "sql",
        "validate",
        "--from-dialect",
        "postgres",
        "SELECT name FROM regions WHERE name ILIKE 'eu%'",
    )
    assert done.returncode == 0 and "LIKE" in done.stdout and "ILIKE" not in done.stdout
    bad = cli("sql", "validate", "--from-dialect", "klingon", "SELECT 1")
    assert bad.returncode == 2 and "Unknown SQL dialect 'klingon'" in bad.stderr


def test_validate_reads_stdin(cli: Any) -> None:
    done = cli("sql", "validate", "--json", "-", stdin="SELECT 1 AS one")
    assert done.returncode == 0 and json.loads(done.stdout)["valid"]


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        ("", "empty_sql"),
        ("DELETE FROM orders", "not_read_only"),
        ("COMMIT; DELETE FROM orders", "multiple_statements"),
        ("SELECT * FROM ordrs", "unknown_table"),
        ("SELEC 1", "parse_error"),
    ],
)
def test_run_rejections_exit_1_with_error_json(cli: Any, sql: str, code: str) -> None:
    done = cli("sql", "run", "--json", sql)
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["code"] == code and error["message"] and error["hint"]


def test_run_json_shape(cli: Any) -> None:
    done = cli(
        "sql",
        "run",
        "--json",
        "--max-rows",
        "3",
        "SELECT country, COUNT(*) AS n FROM customers GROUP BY country ORDER BY n DESC",
    )
    assert done.returncode == 0
    payload = json.loads(done.stdout)
    assert set(payload) == {"columns", "rows", "row_count", "truncated", "elapsed_ms", "sql"}
    assert payload["columns"] == [
        {"name": "country", "type": "text"},
        {"name": "n", "type": "integer"},
    ]
    assert payload["row_count"] == 3 and payload["truncated"] is True


def test_run_human_table(cli: Any) -> None:
    done = cli("sql", "run", "SELECT name FROM regions ORDER BY name")
    assert done.returncode == 0 and "Europe" in done.stdout and "5 rows" in done.stdout


def test_run_timeout(cli: Any) -> None:
    done = cli(
        "sql",
        "run",
        "--timeout",
        "0.3",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c",
    )
    assert done.returncode == 1 and "timeout" in done.stderr and "Hint" in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("sql", "run", "--db", "nosuch", "SELECT 1"),
        ("sql", "run", "--max-rows", "0", "SELECT 1"),
        ("sql", "run", "--timeout", "-1", "SELECT 1"),
        ("--config", "missing.toml", "sql", "run", "SELECT 1"),
        ("chart", "--out", "chart.txt", "SELECT name FROM regions"),
    ],
)
def test_usage_errors_exit_2(cli: Any, args: tuple[str, ...]) -> None:
    done = cli(*args)
    assert done.returncode == 2
    assert "Error" in done.stderr and "Hint" in done.stderr


def test_unknown_db_json(cli: Any) -> None:
    done = cli("sql", "run", "--json", "--db", "salse", "SELECT 1")
    assert done.returncode == 2
    assert json.loads(done.stdout)["error"]["message"].startswith("Unknown database 'salse'")


def test_unreachable_url_names_host_without_password(cli: Any) -> None:
    done = cli("sql", "run", "--db", "postgresql://me:hunter2@127.0.0.1:9/db", "SELECT 1")
    assert done.returncode == 1
    assert "127.0.0.1:9" in done.stderr and "hunter2" not in done.stderr + done.stdout


def test_db_flag_accepts_a_url_locally(cli: Any, sample_path: Path) -> None:
    done = cli(
        "sql",
        "run",
        "--json",
        "--db",
        f"sqlite:///{sample_path}",
        "SELECT COUNT(*) AS n FROM regions",
    )
    assert done.returncode == 0 and json.loads(done.stdout)["rows"] == [[5]]


def test_schema_human_and_json(cli: Any) -> None:
    human = cli("schema", "--table", "orders")
    assert human.returncode == 0 and "CREATE TABLE orders" in human.stdout
    assert "FOREIGN KEY (customer_id) REFERENCES customers(customer_id)" in human.stdout
    data = json.loads(cli("schema", "--json", "--detail", "names").stdout)
    assert "orders" in [t["name"] for t in data["tables"]] and data["total_tables"] >= 8
    missing = cli("schema", "--table", "ordrs")
    assert missing.returncode == 1 and "Did you mean 'orders'" in missing.stderr


def test_chart_outputs(cli: Any, tmp_path: Path) -> None:
    sql = "SELECT segment, COUNT(*) AS customers FROM customers GROUP BY segment"
    spec = json.loads(cli("chart", sql).stdout)
    mark = spec["mark"]
    assert (mark["type"] if isinstance(mark, dict) else mark) == "bar"
    done = cli("chart", "--out", "c.png", sql)
    assert done.returncode == 0
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")
    bad = cli("chart", "--x", "segmnt", sql)
    assert bad.returncode == 1 and "segmnt" in bad.stderr and "segment" in bad.stderr


def test_db_check_and_list(cli: Any) -> None:
    report = json.loads(cli("db", "check", "--json").stdout)
    assert report["dialect"] == "sqlite" and report["read_only_session"] is True
    assert report["table_count"] >= 8
    listing = json.loads(cli("db", "list", "--json").stdout)
    assert listing[0]["name"] == "sample"
