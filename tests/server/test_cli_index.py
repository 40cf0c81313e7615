"""`sqlsage index`, `search` and `knowledge add-example` as real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SQLSAGE = str(Path(sys.executable).with_name("sqlsage"))


@pytest.fixture(scope="module")
def prebuilt(sample_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the sample and its index, built once by the real CLI."""
    data = tmp_path_factory.mktemp("prebuilt") / "data"
    data.mkdir()
    shutil.copy(sample_path, data / "sample.sqlite")
    shutil.copy(str(sample_path) + ".comments.json", data / "sample.sqlite.comments.json")
    base = {k: v for k, v in os.environ.items() if not k.startswith("SQLSAGE_")}
    subprocess.run(
        [SQLSAGE, "index"],
        env=base | {"SQLSAGE_DATA_DIR": str(data)},
        check=True,
        capture_output=True,
        timeout=300,
        cwd=data,
    )
    return data


@pytest.fixture()
def workdir(prebuilt: Path, tmp_path: Path) -> Path:
    """A project folder: a copy of the prebuilt data dir, a config with a second database."""
    data = tmp_path / "data"
    shutil.copytree(prebuilt, data)
    (tmp_path / "sqlsage.toml").write_text(
        f'data_dir = "{data}"\n'
        "[databases.sample]\n"
        f'url = "sqlite:///{data / "sample.sqlite"}"\n'
        "[databases.far]\n"
        'url = "postgresql://someone:pw@127.0.0.1:9/nowhere"\n',
        encoding="utf-8",
    )
    return tmp_path


def run(
    workdir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SQLSAGE_")}
    done = subprocess.run(
        [SQLSAGE, *args],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=base | (env or {}),
        timeout=300,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def test_index_all_continues_past_an_unreachable_database(workdir: Path) -> None:
    done = run(workdir, "index", "--all", "--json")
    assert done.returncode == 1
    reports = {r["database"]: r for r in json.loads(done.stdout)}
    assert reports["far"]["error"]["code"] == "database_unreachable"
    assert "127.0.0.1:9" in reports["far"]["error"]["message"]
    assert "pw@" not in done.stdout
    assert reports["sample"]["documents"] > 300
    again = run(workdir, "index", "--db", "sample", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)[0]["groups_changed"] == 0


def test_search_json_shape(workdir: Path) -> None:
    done = run(workdir, "search", "--json", "--k", "2", "customers in Germany")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert set(payload) == {"hits", "tables", "context"}
    assert payload["tables"][0] == "customers"
    assert set(payload["hits"][0]) == {"kind", "table", "column", "text", "score"}
    assert "CREATE TABLE customers" in payload["context"]


def test_search_human_and_bad_question(workdir: Path) -> None:
    human = run(workdir, "search", "returns by reason")
    assert human.returncode == 0 and "returns" in human.stdout
    empty = run(workdir, "search", "   ")
    assert empty.returncode == 2 and "The question is empty." in empty.stderr


def test_misconfigured_embedding_names_the_setting(workdir: Path) -> None:
    done = run(workdir, "search", "customers", env={"SQLSAGE_EMBEDDING": "magic/thing"})
    assert done.returncode == 2
    assert "SQLSAGE_EMBEDDING" in done.stderr and "magic/thing" in done.stderr


def test_two_processes_indexing_at_once(workdir: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SQLSAGE_")}
    procs = [
        subprocess.Popen(
            [SQLSAGE, "index", "--db", "sample", "--rebuild", "--json"],
            cwd=workdir,
            env=base,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    counts = {json.loads(out)[0]["documents"] for out, _ in outputs}
    assert len(counts) == 1, "both runs end with the same, complete index"
    final = run(workdir, "index", "--db", "sample", "--json")
    assert json.loads(final.stdout)[0]["groups_changed"] == 0
    assert json.loads(final.stdout)[0]["documents"] == counts.pop()


def test_add_example_then_search_finds_it(workdir: Path) -> None:
    question = "Which warehouse ships the most parcels?"
    sql = "SELECT channel, COUNT(*) FROM orders GROUP BY channel"
    done = run(workdir, "knowledge", "add-example", question, sql)
    assert done.returncode == 0, done.stderr
    assert (workdir / "knowledge" / "sample.yml").read_text(encoding="utf-8").count(question) == 1
    found: Any = json.loads(run(workdir, "search", "--json", "warehouse parcels shipped").stdout)
    assert any(h["kind"] == "example" and h["text"] == question for h in found["hits"])
    assert "Similar verified questions" in found["context"] and sql in found["context"]
    bad = run(workdir, "knowledge", "add-example", "Delete it all", "DELETE FROM orders")
    assert bad.returncode == 1 and "not_read_only" in bad.stderr
    assert "Delete it all" not in (workdir / "knowledge" / "sample.yml").read_text(encoding="utf-8")
