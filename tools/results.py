"""Typed results shared by run_sql, build_chart and every face that shows rows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# The normalized column types; `native` keeps what the driver said.
COLUMN_TYPES = (
    "integer",
    "number",
    "text",
    "boolean",
    "date",
    "datetime",
    "time",
    "bytes",
    "json",
    "unknown",
)


class Column(BaseModel):
    """One result column: its name and normalized type (see COLUMN_TYPES)."""

    name: str
    type: str = "unknown"


class QueryResult(BaseModel):
    """Rows of one query, JSON-safe, capped at max_rows with a truncated flag."""

    columns: list[Column]
    rows: list[list[Any]]
    row_count: int = Field(description="Rows returned in this page (after the cap).")
    truncated: bool = Field(description="True when the query had more rows than the cap.")
    elapsed_ms: float
    sql: str = Field(default="", description="The validated SQL that ran.")
    dialect: str = ""
    database: str = ""
    cached: bool = Field(default=False, description="Served from the server's result cache.")
