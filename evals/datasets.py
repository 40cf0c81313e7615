"""Evaluation questions: the bundled JSONL sets and Spider's dev split, as one small record type."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.errors import INVALID_ARGUMENT, NOT_FOUND, SqlsageError

DATA_DIR = Path(__file__).parent / "data"
SAMPLE_BUILTIN = DATA_DIR / "sample_builtin.jsonl"

# The question shapes of sample_builtin.jsonl; reports break accuracy down by them.
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

_REQUIRED = ("id", "question", "sql", "db")
_OPTIONAL = ("shape", "evidence")
# Spider ships its splits under these names; only dev is beside the checkout today.
SPIDER_SPLITS = {"dev": "dev.json", "train": "train_spider.json"}


@dataclass(frozen=True)
class EvalQuestion:
    """One question with its gold SQL and the database it is asked of."""

    id: str
    question: str
    sql: str
    db: str
    shape: str | None = None
    evidence: str | None = None


def load_jsonl(path: Path | str) -> list[EvalQuestion]:
    """Read one question object per line; blank lines are skipped, ids must be unique."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SqlsageError(
            INVALID_ARGUMENT, f"Cannot read question file '{path}': {error.strerror}."
        ) from error
    questions: list[EvalQuestion] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        question = _parse_line(line, f"{path}:{number}")
        if question.id in first_line:
            raise _bad(
                f"{path}:{number}",
                f"duplicate id '{question.id}' (first used on line {first_line[question.id]})",
            )
        first_line[question.id] = number
        questions.append(question)
    return questions


def _parse_line(line: str, where: str) -> EvalQuestion:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as error:
        raise _bad(where, f"invalid JSON ({error.msg} at col {error.colno})") from error
    if not isinstance(item, dict):
        raise _bad(where, f"expected a JSON object, got {type(item).__name__}")
    unknown = sorted(set(item) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        known = ", ".join((*_REQUIRED, *_OPTIONAL))
        raise _bad(where, f"unknown field '{unknown[0]}' (known: {known})")
    for field in _REQUIRED:
        if field not in item:
            raise _bad(where, f'missing "{field}" field')
    for field in (*_REQUIRED, *_OPTIONAL):
        value = item.get(field)
        if field in item and not (isinstance(value, str) and value.strip()):
            raise _bad(where, f'"{field}" must be a non-empty string, got {value!r}')
    return EvalQuestion(**item)


def _bad(where: str, problem: str) -> SqlsageError:
    return SqlsageError(INVALID_ARGUMENT, f"{where}: {problem}.")


def load_spider(
    spider_dir: Path | str,
    split: str = "dev",
    limit: int | None = None,
    *,
    skip_missing_db: bool = False,
) -> list[EvalQuestion]:
    """Spider questions of one split (ids `spider-dev-0000` by position), optionally capped."""
    spider_dir = Path(spider_dir)
    if split not in SPIDER_SPLITS:
        raise SqlsageError(
            INVALID_ARGUMENT, f"Unknown Spider split '{split}'. Known: {', '.join(SPIDER_SPLITS)}."
        )
    if limit is not None and limit < 0:
        raise SqlsageError(INVALID_ARGUMENT, f"limit has value {limit}. It must be >= 0.")
    path = spider_dir / SPIDER_SPLITS[split]
    try:
        items: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SqlsageError(
            NOT_FOUND, f"Spider {split} file '{path}' cannot be read: {error.strerror}."
        ) from error
    except json.JSONDecodeError as error:
        raise SqlsageError(
            INVALID_ARGUMENT, f"{path}:{error.lineno}: invalid JSON ({error.msg})."
        ) from error
    if not isinstance(items, list):
        raise SqlsageError(INVALID_ARGUMENT, f"{path}: expected a JSON list of questions.")
    questions: list[EvalQuestion] = []
    for index, item in enumerate(items):
        if limit is not None and len(questions) >= limit:
            break
        missing = [key for key in ("question", "query", "db_id") if key not in item]
        if missing:
            raise SqlsageError(
                INVALID_ARGUMENT, f"{path}: item {index} has no '{missing[0]}' field."
            )
        if skip_missing_db and not _spider_db_file(spider_dir, item["db_id"]).exists():
            continue
        questions.append(
            EvalQuestion(
                id=f"spider-{split}-{index:04d}",
                question=item["question"],
                sql=item["query"],
                db=item["db_id"],
            )
        )
    return questions


def spider_db_path(spider_dir: Path | str, db_id: str) -> Path:
    """The SQLite file of a Spider database: `<spider_dir>/database/<db_id>/<db_id>.sqlite`."""
    if not db_id or db_id in (".", "..") or "/" in db_id or "\\" in db_id:
        raise SqlsageError(INVALID_ARGUMENT, f"Spider db_id has value {db_id!r}. Not a plain name.")
    path = _spider_db_file(Path(spider_dir), db_id)
    if not path.is_file():
        raise SqlsageError(
            NOT_FOUND,
            f"Spider database '{db_id}' not found at {path}.",
            hint="Some dev databases are absent from the shared copy (see provenance.json); "
            "load with skip_missing_db=True to leave their questions out.",
        )
    return path


def _spider_db_file(spider_dir: Path, db_id: str) -> Path:
    return spider_dir / "database" / db_id / f"{db_id}.sqlite"
