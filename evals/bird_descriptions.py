"""BIRD's `database_description/<table>.csv` files as a comments sidecar, so the agent sees them
as column comments (schema_lookup) and the knowledge index embeds them (semantic_search).

Each CSV row is `original_column_name, column_name, column_description, data_format,
value_description`. A column's comment joins its readable name (when it differs), its
description and its value description, whitespace collapsed, capped at MAX_COMMENT chars.
Some of BIRD's files are not UTF-8 (student_club/budget.csv is cp1252): those are read as
cp1252, never skipped.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

MAX_COMMENT = 400
FOLDER = "database_description"


def read_text(path: Path) -> str:
    """A description file's text: UTF-8 (with or without BOM), else cp1252."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def column_comment(row: dict[str, str]) -> str:
    """One column's comment from its CSV row."""
    original = (row.get("original_column_name") or "").strip()
    readable = " ".join((row.get("column_name") or "").split())
    parts = []
    if readable and readable.lower() != original.lower():
        parts.append(f"{readable}:")
    for key in ("column_description", "value_description"):
        text = " ".join((row.get(key) or "").split())
        if text and text.lower() != readable.lower():
            parts.append(text if text.endswith(".") else f"{text}.")
    comment = " ".join(parts).rstrip(":")
    return comment if len(comment) <= MAX_COMMENT else comment[: MAX_COMMENT - 3] + "..."


def table_comments(path: Path) -> dict[str, str]:
    """{column: comment} of one table's description file (columns without text left out)."""
    reader = csv.DictReader(io.StringIO(read_text(path)))
    if reader.fieldnames is not None:
        reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
    columns: dict[str, str] = {}
    for row in reader:
        name = (row.get("original_column_name") or "").strip()
        comment = column_comment(row)
        if name and comment:
            columns[name] = comment
    return columns


def write_comments_file(db_folder: Path, target: Path) -> Path | None:
    """The sidecar JSON for one BIRD database (None when it has no description folder)."""
    folder = db_folder / FOLDER
    if not folder.is_dir():
        return None
    tables = {
        csv_path.stem: {"columns": table_comments(csv_path)}
        for csv_path in sorted(folder.glob("*.csv"))
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"tables": tables}, indent=1, ensure_ascii=False), "utf-8")
    return target
