"""What the MCP tools return as structured content (their outputSchema): typed, complete, and
without the text renderings, which go to the model as the tool's text block instead."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, WithJsonSchema

from tools.errors import ErrorInfo
from tools.results import Column
from tools.schema_models import TableInfo
from tools.search_models import SearchHit


def _rows_schema(schema: dict[str, Any]) -> None:
    # Rows are arrays of JSON values in column order (`columns` types them). The schema does
    # not spell out the per-row and per-cell shape: the SDK's client checks every result
    # against the outputSchema, and descending into 1,000 rows cost it 13-18 ms a call
    # (60 ms with a schema per cell), more than the query itself.
    schema.pop("items", None)


ROWS = Field(
    description="One array per row, values in column order (JSON-safe), typed by `columns`.",
    json_schema_extra=_rows_schema,
)
# The columns' item schema written in place, not as a `$ref` into `$defs`: the SDK's client
# checks every result against the outputSchema, and resolving the reference for each column
# is ~20 % of that check on a small result.
COLUMNS = WithJsonSchema(
    {
        "type": "array",
        "items": {k: v for k, v in Column.model_json_schema().items() if k != "title"},
    }
)


class DatabaseItem(BaseModel):
    """One configured database (never its URL or password)."""

    name: str
    dialect: str
    description: str = ""
    default: bool = False


class DatabaseList(BaseModel):
    """The databases this server can query."""

    databases: list[DatabaseItem]


class SchemaOutput(BaseModel):
    """One page of a database's exposed schema."""

    database: str
    dialect: str
    detail: str
    tables: list[TableInfo]
    total_tables: int = Field(description="Tables matching the filter, on all pages.")
    offset: int
    next_offset: int | None = Field(
        description="Pass as offset for the next page; None at the end."
    )


class SearchOutput(BaseModel):
    """What semantic search found for a question."""

    database: str
    question: str
    tables: list[str] = Field(description="Ranked tables, then tables added to join them.")
    hits: list[SearchHit]


class ValidationOutput(BaseModel):
    """A dry run: the normalized SQL that would run, or diagnostics to fix it from."""

    valid: bool
    sql: str = Field(description="Normalized SQL in the database's dialect, with its LIMIT.")
    dialect: str
    tables: list[str]
    errors: list[ErrorInfo] = Field(
        description="code, message, line/col, hint and did_you_mean for each problem."
    )
    limit: int | None = None
    limit_applied: bool = False


class QueryOutput(BaseModel):
    """The rows of one read-only query."""

    database: str
    sql: str = Field(description="The validated SQL that ran.")
    columns: Annotated[list[Column], COLUMNS]
    rows: list[list[Any]] = ROWS
    row_count: int
    truncated: bool = Field(description="True when the query had more rows than max_rows.")
    elapsed_ms: float


class ChartOutput(BaseModel):
    """A chart of a query's result: the Vega-Lite spec (the PNG is in the content)."""

    database: str
    sql: str
    type: str
    x: str | None = None
    y: str | None = None
    color: str | None = None
    reason: str
    row_count: int
    spec: dict[str, Any] = Field(description="Vega-Lite v5 spec with the data inline.")


class AskOutput(BaseModel):
    """One turn of the agent: its answer, the SQL it ran, the result and the chart."""

    status: str = Field(description="answered, or could_not_answer / failed with an error.")
    answer: str
    sql: str | None
    columns: Annotated[list[Column], COLUMNS]
    rows: list[list[Any]] = ROWS
    row_count: int
    truncated: bool
    chart: dict[str, Any] | None = Field(description="Vega-Lite spec, if a chart was built.")
    session_id: str = Field(description="Pass it back to ask a follow-up in this session.")
    turn: int
    steps: list[dict[str, Any]]
    usage: dict[str, Any]
    error: ErrorInfo | None = None


class ExampleOutput(BaseModel):
    """A verified question/SQL pair saved to the knowledge index."""

    database: str
    question: str
    sql: str
    knowledge_file: str
    embedded: int = Field(description="Documents (re-)embedded into the index.")
