"""The harness's datasets: Spider (`dev.json` + `database/<db>/<db>.sqlite`), BIRD (`*.json` with
evidence and difficulty + `dev_databases/<db>/<db>.sqlite`) and our JSONL
(`{"id", "question", "db", "gold_sql", "tags"?, "evidence"?}`, `db` a configured name or URL).

Every question keeps its position in the file (`index`), which is what prediction files and
results are keyed by. A question whose database is missing is kept with `db_path=None`: the
runner reports it as skipped, it is never silently dropped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tools.errors import INVALID_ARGUMENT, SqlsageError

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


@dataclass(frozen=True)
class Dataset:
    """The questions of one file, in file order, and its format."""

    path: Path
    format: Format
    items: list[EvalItem]

    @property
    def missing_dbs(self) -> list[str]:
        """Databases named by questions but not found (their questions are skipped)."""
        return sorted({i.db for i in self.items if i.db_path is None and self.format != "jsonl"})


def load_dataset(path: Path | str, fmt: str, *, db_dir: Path | str | None = None) -> Dataset:
    """A dataset file (or a Spider folder holding dev.json) in the given format."""
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
        return Dataset(path, fmt, _jsonl_items(path))
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


def _jsonl_items(path: Path) -> list[EvalItem]:
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
        local = Path(db.removeprefix("sqlite:///")) if db.startswith("sqlite:///") else None
        items.append(
            EvalItem(
                index=len(items),
                question=item["question"],
                gold_sql=item["gold_sql"],
                db=db,
                db_path=local if local is not None and local.is_file() else None,
                question_id=item["id"],
                evidence=item.get("evidence"),
                tags=tuple(item.get("tags") or ()),
            )
        )
    return items
