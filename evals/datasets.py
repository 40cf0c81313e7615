"""The harness's datasets: Spider (`dev.json` + `database/<db>/<db>.sqlite`), BIRD (`*.json` with
evidence and difficulty + `dev_databases/<db>/<db>.sqlite`) and our JSONL
(`{"id", "question", "db", "gold_sql", "tags"?, "evidence"?}`, `db` a configured name or URL).

Every question keeps its position in the file (`index`), which is what prediction files and
results are keyed by. A question whose database is missing is kept with `db_path=None`: the
runner reports it as skipped, it is never silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tools.errors import INVALID_ARGUMENT, SqlsageError
from tools.urls import looks_like_url

DATA_DIR = Path(__file__).parent / "data"
# Our own question set on the bundled sample database, tagged with its question shapes.
SAMPLE_BUILTIN = DATA_DIR / "sample_builtin.jsonl"
SHAPES = (
    "count",
    "aggregate",
    "group_by",
    "filter_value",
    "time_range",
    "time_bucket",
    "top_n",
    "list",
    "join",
    "glossary_metric",
)

Format = Literal["spider", "bird", "jsonl"]
FORMATS: tuple[Format, ...] = ("spider", "bird", "jsonl")
_DB_FOLDERS = {"spider": "database", "bird": "dev_databases"}


@dataclass(frozen=True)
class EvalItem:
    """One question of a dataset, where to run it, and what is known about it."""

    index: int
    question: str
    gold_sql: str
    db: str
    db_path: Path | None
    question_id: str | None = None
    evidence: str | None = None
    difficulty: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    skip_reason: str | None = None  # why db_path is None, when it is

    @property
    def why_skipped(self) -> str:
        """The message a skipped question is reported with."""
        return self.skip_reason or f"No database '{self.db}' was found."


@dataclass(frozen=True)
class Dataset:
    """The questions of one file, in file order, and its format."""

    path: Path
    format: Format
    items: list[EvalItem]

    @property
    def missing_dbs(self) -> list[str]:
        """Databases named by questions but not found (their questions are skipped)."""
        return sorted({i.db for i in self.items if i.db_path is None})


Resolver = Callable[[str], "Path | str | None"]


def load_dataset(
    path: Path | str,
    fmt: str,
    *,
    db_dir: Path | str | None = None,
    resolve: Resolver | None = None,
) -> Dataset:
    """A dataset file (or a Spider folder holding dev.json) in the given format. For JSONL,
    `resolve` maps a configured database name to its SQLite file (or to a message saying why
    it cannot be scored)."""
    if fmt not in FORMATS:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Unknown dataset format '{fmt}'.",
            hint=f"Use one of: {', '.join(FORMATS)}.",
        )
    path = Path(path)
    if path.is_dir():
        if fmt != "spider":
            raise SqlsageError(
                INVALID_ARGUMENT,
                f"'{path}' is a folder; a {fmt} dataset is one file.",
                hint="Pass the question file itself (BIRD: e.g. mini_dev_sqlite.json).",
            )
        path = path / "dev.json"
    if not path.is_file():
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"Dataset file '{path}' does not exist.",
            hint="Spider: the folder holding dev.json or the JSON file; BIRD: its questions "
            "JSON; jsonl: one question object per line.",
        )
    if fmt == "jsonl":
        return Dataset(path, fmt, _jsonl_items(path, resolve))
    items = _json_list(path, fmt)
    folder = Path(db_dir) if db_dir is not None else path.parent / _DB_FOLDERS[fmt]
    key = "query" if fmt == "spider" else "SQL"
    required = ("question", key, "db_id")
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad(path, f"item {index} is a {type(item).__name__}, not an object", fmt)
        for name in required:
            if not isinstance(item.get(name), str):
                raise _bad(path, f"item {index} has no text field '{name}'", fmt)
        db = item["db_id"]
        qid = item.get("question_id")
        out.append(
            EvalItem(
                index=index,
                question=item["question"],
                gold_sql=item[key],
                db=db,
                db_path=_db_file(folder, db),
                question_id=str(qid) if qid is not None else None,
                evidence=item.get("evidence") or None,
                difficulty=item.get("difficulty"),
            )
        )
    return Dataset(path, fmt, out)


def _json_list(path: Path, fmt: str) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise _bad(path, "is not UTF-8 text", fmt) from None
    except json.JSONDecodeError as error:
        raise _bad(path, f"line {error.lineno}: invalid JSON ({error.msg})", fmt) from None
    if not isinstance(data, list):
        raise _bad(path, f"holds a JSON {type(data).__name__}, not a list of questions", fmt)
    return data


def _bad(path: Path, problem: str, fmt: str) -> SqlsageError:
    expected = {
        "spider": 'a JSON list of {"question", "query", "db_id"} (Spider dev.json)',
        "bird": 'a JSON list of {"question_id", "db_id", "question", "evidence", "SQL", '
        '"difficulty"} (BIRD dev.json / mini_dev_sqlite.json)',
        "jsonl": 'one {"id", "question", "db", "gold_sql"} object per line',
    }[fmt]
    return SqlsageError(
        INVALID_ARGUMENT,
        f"Dataset '{path}' {problem}.",
        hint=f"--format {fmt} expects {expected}.",
    )


def _db_file(folder: Path, db_id: str) -> Path | None:
    if not db_id or db_id in (".", "..") or "/" in db_id or "\\" in db_id:
        return None
    path = folder / db_id / f"{db_id}.sqlite"
    return path if path.is_file() else None


def _jsonl_db(db: str, base: Path, resolve: Resolver | None) -> tuple[Path | None, str | None]:
    """A JSONL question's SQLite file, or None and the reason it has none."""
    if db.startswith("sqlite:///"):
        given = Path(db.removeprefix("sqlite:///"))
        for candidate in (given, base / given):
            if candidate.is_file():
                return candidate, None
        return None, f"The SQLite file '{given}' of database '{db}' does not exist."
    if looks_like_url(db):
        scheme = db.split("://", 1)[0]
        return None, (
            f"Database '{db}' is {scheme}; scoring runs gold and predicted SQL on SQLite files."
        )
    found = resolve(db) if resolve is not None else None
    if isinstance(found, Path):
        return found, None
    return None, found or f"No database '{db}' is configured."


def _jsonl_items(path: Path, resolve: Resolver | None) -> list[EvalItem]:
    items: list[EvalItem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise _bad(path, f"line {number}: invalid JSON ({error.msg})", "jsonl") from None
        if not isinstance(item, dict):
            raise _bad(path, f"line {number} is not an object", "jsonl")
        for name in ("id", "question", "db", "gold_sql"):
            if not isinstance(item.get(name), str) or not item[name].strip():
                raise _bad(path, f"line {number} has no text field '{name}'", "jsonl")
        if item["id"] in seen:
            raise _bad(
                path, f"line {number} repeats id '{item['id']}' of line {seen[item['id']]}", "jsonl"
            )
        seen[item["id"]] = number
        db = item["db"]
        local, reason = _jsonl_db(db, path.parent, resolve)
        items.append(
            EvalItem(
                index=len(items),
                question=item["question"],
                gold_sql=item["gold_sql"],
                db=db,
                db_path=local,
                question_id=item["id"],
                evidence=item.get("evidence"),
                difficulty=item.get("difficulty"),
                tags=tuple(item.get("tags") or ()),
                skip_reason=reason,
            )
        )
    return items
