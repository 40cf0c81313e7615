"""One error root for every tool: a stable code, a message that quotes the bad value, and a hint."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# Stable snake_case codes. The README lists them; clients may switch on them.
PARSE_ERROR = "parse_error"
EMPTY_SQL = "empty_sql"
NOT_READ_ONLY = "not_read_only"
MULTIPLE_STATEMENTS = "multiple_statements"
DENIED_FUNCTION = "denied_function"
UNKNOWN_TABLE = "unknown_table"
UNKNOWN_COLUMN = "unknown_column"
TIMEOUT = "timeout"
CANCELLED = "cancelled"
ROW_CAP = "row_cap"
UNKNOWN_DATABASE = "unknown_database"
DATABASE_UNREACHABLE = "database_unreachable"
QUERY_FAILED = "query_failed"
INVALID_CONFIG = "invalid_config"
INVALID_ARGUMENT = "invalid_argument"
UNKNOWN_FIELD = "unknown_field"
RENDER_FAILED = "render_failed"
MODEL_UNAVAILABLE = "model_unavailable"
BUDGET_EXHAUSTED = "budget_exhausted"
NOT_FOUND = "not_found"
UNAUTHORIZED = "unauthorized"
FORBIDDEN = "forbidden"
RATE_LIMITED = "rate_limited"
UNANSWERABLE = "unanswerable"
SESSION_BUSY = "session_busy"
TOO_LARGE = "too_large"
INTERNAL_ERROR = "internal_error"

CODES: dict[str, str] = {
    PARSE_ERROR: "The SQL could not be parsed in the database's dialect.",
    EMPTY_SQL: "The SQL string was empty.",
    NOT_READ_ONLY: "The statement would write or change something; only reads are allowed.",
    MULTIPLE_STATEMENTS: "More than one statement was sent; send exactly one.",
    DENIED_FUNCTION: "A function that reaches files, the network, sleeps or administers is denied.",
    UNKNOWN_TABLE: "A table is not in the (exposed) schema.",
    UNKNOWN_COLUMN: "A column is not in the (exposed) schema.",
    TIMEOUT: "The query ran past its time limit and was stopped on the server.",
    CANCELLED: "The query was cancelled and stopped on the server.",
    ROW_CAP: "A row limit argument was out of range.",
    UNKNOWN_DATABASE: "No database is configured under that name.",
    DATABASE_UNREACHABLE: "The database could not be reached or opened.",
    QUERY_FAILED: "The database refused or failed the query.",
    INVALID_CONFIG: "A setting in sqlsage.toml or the environment is invalid.",
    INVALID_ARGUMENT: "An argument was out of range or malformed.",
    UNKNOWN_FIELD: "A chart field is not a column of the result.",
    RENDER_FAILED: "The chart could not be rendered.",
    MODEL_UNAVAILABLE: "The language model could not be reached.",
    BUDGET_EXHAUSTED: "A step, repair or spending budget was used up.",
    NOT_FOUND: "The requested item does not exist (or is not yours).",
    UNAUTHORIZED: "A valid API key is required.",
    FORBIDDEN: "The API key is valid but may not do this.",
    RATE_LIMITED: "Too many requests; retry later.",
    SESSION_BUSY: "The session is already answering a question; wait for it or reconnect to it.",
    TOO_LARGE: "The request body is larger than the server accepts.",
    UNANSWERABLE: "The model could not map the question onto this database and said so.",
    INTERNAL_ERROR: "Something failed that should not have; the session is intact. Please report it.",
}


class ErrorInfo(BaseModel):
    """The one error model every face returns: API, MCP, CLI --json and graph events."""

    code: str
    message: str
    hint: str | None = None
    sql: str | None = None
    line: int | None = None
    col: int | None = None
    did_you_mean: str | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The closest known name, for an unknown table or column.",
    )

    def for_model(self) -> str:
        """Text a language model can act on: what went wrong, where, and what to do."""
        where = f" (line {self.line}, col {self.col})" if self.line is not None else ""
        text = f"Error [{self.code}]{where}: {self.message}"
        if self.hint:
            text += f" Hint: {self.hint}"
        return text


class SqlsageError(Exception):
    """Root of every error sqlsage raises on purpose; carries the error model's fields."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        hint: str | None = None,
        sql: str | None = None,
        line: int | None = None,
        col: int | None = None,
        did_you_mean: str | None = None,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"Unknown error code {code!r}; add it to tools/errors.py CODES.")
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.sql = sql
        self.line = line
        self.col = col
        self.did_you_mean = did_you_mean

    def info(self) -> ErrorInfo:
        """The error as the shared error model."""
        return ErrorInfo(
            code=self.code,
            message=self.message,
            hint=self.hint,
            sql=self.sql,
            line=self.line,
            col=self.col,
            did_you_mean=self.did_you_mean,
        )

    def to_dict(self) -> dict[str, Any]:
        """The error model as a plain dict."""
        return self.info().model_dump()

    def for_model(self) -> str:
        """Text a language model can act on: what went wrong, where, and what to do."""
        return self.info().for_model()

    def __str__(self) -> str:
        return self.for_model()
