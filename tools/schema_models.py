"""The typed shape of an exposed schema: tables, columns, keys. Plain pydantic models with no
database code, so faces that only describe results (the MCP server's output schemas) import
them without SQLAlchemy."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["ColumnInfo", "ForeignKey", "TableInfo"]


class ColumnInfo(BaseModel):
    """One exposed column."""

    name: str
    type: str
    nullable: bool = True
    default: str | None = None
    comment: str | None = None
    primary_key: bool = False
    samples: list[str] | None = Field(default=None, description="A few distinct values.")


class ForeignKey(BaseModel):
    """columns of this table -> ref_columns of ref_table."""

    columns: list[str]
    ref_table: str
    ref_columns: list[str]


class TableInfo(BaseModel):
    """One exposed table or view."""

    name: str
    schema_name: str | None = None
    kind: str = "table"
    comment: str | None = None
    columns: list[ColumnInfo] = Field(default_factory=list)
    primary_key: list[str] = Field(default_factory=list)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    row_estimate: int | None = None
    hidden_columns: int = Field(default=0, description="Columns excluded by configuration.")

    def column(self, name: str) -> ColumnInfo | None:
        """The column called `name`, compared case-insensitively."""
        wanted = name.lower()
        return next((c for c in self.columns if c.name.lower() == wanted), None)
