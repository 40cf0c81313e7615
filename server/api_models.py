"""Request and response bodies of the HTTP API (the OpenAPI document at /openapi.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from graphs.turns import MAX_QUESTION_CHARS
from memory.session_db import SESSION_ID, TITLE_MAX
from tools.errors import ErrorInfo

SESSION_ID_PATTERN = SESSION_ID.pattern


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatRequest(_Body):
    """Ask a question; continue a session by passing its id."""

    message: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    session_id: str | None = Field(default=None, pattern=SESSION_ID_PATTERN)
    db: str | None = Field(default=None, min_length=1, max_length=200)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    cache: bool = Field(default=True, description="False bypasses the query-result cache.")


class RenameRequest(_Body):
    """A session's new title."""

    title: str = Field(min_length=1, max_length=TITLE_MAX)


class FeedbackRequest(_Body):
    """A rating of one answer."""

    session_id: str = Field(pattern=SESSION_ID_PATTERN)
    turn: int = Field(ge=1, le=1_000_000)
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=4000)


class ErrorResponse(BaseModel):
    """Every non-2xx answer."""

    error: ErrorInfo


class SessionOut(BaseModel):
    """One session in a listing."""

    session_id: str
    title: str
    db: str | None
    model: str | None
    created_at: str
    updated_at: str
    message_count: int
    turns: int


class TurnOut(BaseModel):
    """One question and what came of it."""

    turn: int
    question: str
    answer: str
    status: str
    db: str | None
    model: str | None
    sql: str | None
    columns: list[dict[str, Any]] = Field(default_factory=list)
    rows: list[list[Any]] = Field(default_factory=list)
    row_count: int = 0
    truncated: bool = False
    result_ref: str | None = None
    chart: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    elapsed_ms: float = 0.0
    created_at: str


class SessionDetail(SessionOut):
    """A session with its turns (questions, answers, SQL, tables, charts)."""

    messages: list[TurnOut]


class TraceOut(BaseModel):
    """The step-by-step trace of one turn."""

    session_id: str
    turn: int
    question: str
    status: str
    steps: list[dict[str, Any]]
    usage: dict[str, Any]
    elapsed_ms: float
    cache_hits: int


class DatabaseOut(BaseModel):
    """A configured database as clients may see it: never its URL."""

    name: str
    dialect: str
    description: str
    default: bool


class FeedbackOut(BaseModel):
    """What a rating did."""

    id: int
    rating: str
    example_saved: bool
    message: str
