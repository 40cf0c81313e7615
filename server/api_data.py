"""Databases (names, dialects, descriptions: never URLs), their schema, and exports of a turn's
result (its validated SQL re-run with the export cap, streamed as CSV, JSON or XLSX)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response, StreamingResponse

from server.api_deps import Caller, State
from server.api_models import DatabaseOut
from server.api_sessions import SessionPath, TurnPath, own_turn
from tools.errors import NOT_FOUND, SqlsageError
from tools.results import QueryResult
from tools.schema_lookup import schema_lookup

router = APIRouter(prefix="/api", tags=["data"])
ROWS_PER_CHUNK = 500


@router.get("/databases", response_model=list[DatabaseOut])
async def databases(state: State, principal: Caller) -> list[dict[str, Any]]:
    """The configured databases."""
    default = state.settings.default_db()
    out = []
    for name in state.resources.databases.names():
        db = state.resources.databases.get(name)
        out.append(
            {
                "name": name,
                "dialect": db.dialect,
                "description": db.config.description,
                "default": name == default,
            }
        )
    return out


@router.get("/schema/{db}")
async def schema(
    state: State,
    principal: Caller,
    db: str = Path(min_length=1, max_length=200),
    detail: Literal["names", "summary", "full"] = Query(default="summary"),
    pattern: str | None = Query(default=None, max_length=200),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> dict[str, Any]:
    """A page of a database's exposed schema (tables, columns, keys, comments)."""
    database = state.resources.database(db)
    page = await asyncio.to_thread(
        schema_lookup, database, pattern=pattern, detail=detail, limit=limit, offset=offset
    )
    return page.model_dump()


@router.get("/export/{session_id}/{turn}.{fmt}")
async def export(
    state: State,
    principal: Caller,
    session_id: str = SessionPath,
    turn: int = TurnPath,
    fmt: Literal["csv", "json", "xlsx"] = Path(),
) -> Response:
    """A turn's result as a file: its validated SQL run again with the export cap
    (SQLSAGE_EXPORT_MAX_ROWS), streamed."""
    record = await own_turn(state, principal, session_id, turn)
    if not record.get("sql"):
        raise SqlsageError(
            NOT_FOUND,
            f"Turn {turn} of session '{session_id}' ran no SQL, so there is nothing to export.",
            hint="Export a turn whose answer shows a table.",
        )
    database = state.resources.database(record.get("db"))
    source_sql = (record.get("table") or {}).get("source_sql") or record["sql"]
    result = await state.queries.run(
        database,
        source_sql,
        session_id=session_id,
        turn=turn,
        source="export",
        max_rows=state.settings.export_max_rows,
        bypass_cache=True,
    )
    name = f"sqlsage-{session_id}-{turn}.{fmt}"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Row-Count": str(result.row_count),
        "X-Truncated": "true" if result.truncated else "false",
    }
    if fmt == "csv":
        return StreamingResponse(
            _csv(result), media_type="text/csv; charset=utf-8", headers=headers
        )
    if fmt == "json":
        return StreamingResponse(_json(result), media_type="application/json", headers=headers)
    body = await asyncio.to_thread(_xlsx, result)
    return Response(
        body,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=headers,
    )


def _csv(result: QueryResult) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.name for c in result.columns])
    for start in range(0, len(result.rows), ROWS_PER_CHUNK):
        for row in result.rows[start : start + ROWS_PER_CHUNK]:
            writer.writerow(["" if v is None else v for v in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _json(result: QueryResult) -> Iterator[str]:
    head = {
        "columns": [c.model_dump() for c in result.columns],
        "row_count": result.row_count,
        "truncated": result.truncated,
        "sql": result.sql,
    }
    yield json.dumps(head)[:-1] + ',"rows":['
    for start in range(0, len(result.rows), ROWS_PER_CHUNK):
        chunk = result.rows[start : start + ROWS_PER_CHUNK]
        text = ",".join(json.dumps(row, default=str) for row in chunk)
        yield ("," if start else "") + text
    yield "]}"


def _xlsx(result: QueryResult) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("result")
    sheet.append([c.name for c in result.columns])
    for row in result.rows:
        sheet.append([_cell(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(value: Any) -> Any:
    # Spreadsheets take scalars; lists and objects go in as their JSON text.
    return json.dumps(value) if isinstance(value, (list, dict)) else value
