"""What semantic_search returns: ranked hits and tables, and the rendering for a model. Plain
models, importable without the index, the embeddings or the database layer."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["SearchHit", "SearchResult"]


class SearchHit(BaseModel):
    """One ranked document."""

    kind: str
    table: str | None
    column: str | None
    text: str
    score: float


class SearchResult(BaseModel):
    """Ranked hits, ranked tables (with join paths added) and a rendering for a model."""

    database: str
    question: str
    hits: list[SearchHit]
    tables: list[str] = Field(description="Ranked tables, then tables added to join them.")
    context: str = Field(description="Compact CREATE TABLE-like rendering for a model.")
