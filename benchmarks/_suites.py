"""Questions of Spider dev and BIRD mini-dev, and BIRD's column descriptions as a comments file.

The retrieval benchmarks (schema_linking.py, index_perf.py) search with the question text, so
they need more than _common.GoldQuery: the question, BIRD's evidence, and the databases'
documentation, which sqlsage reads from a comments sidecar.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.databases import Database, DatabaseConfig

MAX_COMMENT_CHARS = 200
# cp1252 before latin-1: BIRD's non-UTF-8 files use its bullets and quotes, which latin-1
# would decode as invisible control characters; latin-1 accepts any byte, so it comes last.
ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "latin-1")
# BIRD prefixes many value descriptions with this label; it carries no meaning of its own.
_BOILERPLATE = re.compile(r"commonsense evidence:?", re.IGNORECASE)


@dataclass(frozen=True)
class Question:
    """One benchmark question: what the agent is asked, and the gold SQL that answers it."""

    suite: str
    db_id: str
    text: str
    sql: str


@dataclass(frozen=True)
class SuiteDatabase:
    """One database of a suite: its SQLite file and, for BIRD, its description folder."""

    suite: str
    name: str
    path: Path
    descriptions: Path | None = None


def spider_databases(data: Path) -> list[SuiteDatabase]:
    """Every Spider dev database present, by name."""
    root = data / "spider_dev" / "database"
    found = [SuiteDatabase("spider", d.name, d / f"{d.name}.sqlite") for d in _dirs(root)]
    return [d for d in found if d.path.is_file()]


def bird_databases(data: Path) -> list[SuiteDatabase]:
    """Every BIRD mini-dev database present, with its database_description folder."""
    root = data / "bird_minidev" / "dev_databases"
    found = [
        SuiteDatabase("bird", d.name, d / f"{d.name}.sqlite", d / "database_description")
        for d in _dirs(root)
    ]
    return [d for d in found if d.path.is_file()]


def _dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def spider_questions(data: Path, databases: list[SuiteDatabase]) -> list[Question]:
    """Spider dev questions whose database is present."""
    present = {d.name for d in databases}
    items = json.loads((data / "spider_dev" / "dev.json").read_text(encoding="utf-8"))
    return [
        Question("spider", i["db_id"], i["question"], i["query"])
        for i in items
        if i["db_id"] in present
    ]


def bird_questions(data: Path, databases: list[SuiteDatabase]) -> list[Question]:
    """BIRD mini-dev questions whose database is present, with the evidence appended.

    BIRD gives the agent its evidence ("external knowledge") next to the question, so the
    search sees both, as the agent would.
    """
    present = {d.name for d in databases}
    path = data / "bird_minidev" / "mini_dev_sqlite.json"
    items = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []
    return [
        Question("bird", i["db_id"], with_evidence(i["question"], i.get("evidence")), i["SQL"])
        for i in items
        if i["db_id"] in present
    ]


def with_evidence(question: str, evidence: str | None) -> str:
    """The question followed by BIRD's external knowledge, when there is any."""
    evidence = (evidence or "").strip()
    return f"{question}\nExternal knowledge: {evidence}" if evidence else question


# ---- BIRD descriptions -> comments sidecar ----------------------------------------------------
def read_description_csv(path: Path) -> list[dict[str, str]]:
    """Rows of one BIRD description CSV; its encoding varies, so try a few in order."""
    raw = path.read_bytes()
    for encoding in ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    raise ValueError(f"Description file '{path}' is not in any of {', '.join(ENCODINGS)}.")


def column_comment(row: dict[str, str]) -> str:
    """column_description, then value_description when present, on one short line."""
    parts = [_squash(row.get("column_description")), _squash(row.get("value_description"))]
    text = ". ".join(p.rstrip(".") for p in parts if p)
    if len(text) > MAX_COMMENT_CHARS:
        text = text[: MAX_COMMENT_CHARS - 3].rstrip() + "..."
    return text


def _squash(text: str | None) -> str:
    without = _BOILERPLATE.sub(" ", text or "")
    return " ".join(without.split()).strip(" .;,")


def bird_comments(descriptions: Path) -> dict[str, Any]:
    """The comments sidecar (`{"tables": {t: {"columns": {c: text}}}}`) of one BIRD database."""
    tables: dict[str, Any] = {}
    for path in sorted(descriptions.glob("*.csv")):
        columns: dict[str, str] = {}
        for row in read_description_csv(path):
            name = (row.get("original_column_name") or "").strip()
            comment = column_comment(row)
            if name and comment:
                columns[name] = comment
        tables[path.stem] = {"columns": columns}
    return {"tables": tables}


def open_database(db: SuiteDatabase, workdir: Path) -> Database:
    """A sqlsage Database over the file; BIRD's descriptions become its comments_file."""
    comments = None
    if db.descriptions is not None and db.descriptions.is_dir():
        target = workdir / f"{db.name}.comments.json"
        target.write_text(json.dumps(bird_comments(db.descriptions), indent=1), encoding="utf-8")
        comments = str(target)
    return Database(
        DatabaseConfig(name=db.name, url=f"sqlite:///{db.path}", comments_file=comments)
    )
