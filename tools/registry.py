"""The five tools as the model sees them: names, argument schemas and descriptions, one
definition each. Faces adapt these thin: the agent binds `tool_schemas()` (OpenAI function
format, which every LangChain chat model and litellm accept); the MCP server reuses the same
argument models. Execution lives with the caller, which owns the session's database and results.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tools.errors import INVALID_ARGUMENT, SqlsageError

SEMANTIC_SEARCH = "semantic_search"
SCHEMA_LOOKUP = "schema_lookup"
VALIDATE_SQL = "validate_sql"
RUN_SQL = "run_sql"
BUILD_CHART = "build_chart"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SemanticSearchArgs(_Args):
    """Find the tables, columns, values, glossary terms and worked examples a question needs.
    Call this first for every new question; it returns a compact schema for the relevant tables."""

    question: str = Field(description="The user's question, or the part you need tables for.")
    k: int = Field(default=8, ge=1, le=30, description="How many tables to return at most.")


class SchemaLookupArgs(_Args):
    """Describe tables exactly: columns, types, keys, comments and sample values. Use it when
    semantic_search did not show a table or column you need."""

    tables: list[str] | None = Field(default=None, description="Table names to describe.")
    pattern: str | None = Field(default=None, description="Glob or substring over table names.")
    detail: Literal["names", "summary", "full"] = "summary"


class ValidateSqlArgs(_Args):
    """Check one read-only SELECT against the schema without running it; returns the normalized
    SQL or errors with line, column and a hint."""

    sql: str = Field(description="One SELECT (or WITH ... SELECT) statement.")


class RunSqlArgs(_Args):
    """Validate and run one read-only SELECT; returns the first rows, column statistics and the
    row count. Nothing can be written. Cite this SQL in your answer."""

    sql: str = Field(description="One SELECT (or WITH ... SELECT) statement.")


class BuildChartArgs(_Args):
    """Chart the latest query result as Vega-Lite. Leave everything as auto unless the user asked
    for a kind of chart or specific axes."""

    chart_type: Literal["auto", "bar", "line", "scatter", "pie", "table"] = "auto"
    x: str | None = Field(default=None, description="Result column for the x axis.")
    y: str | None = Field(default=None, description="Result column for the y axis.")
    color: str | None = Field(default=None, description="Result column for series colour.")
    title: str | None = None


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, argument model (whose docstring the model reads)."""

    name: str
    args: type[_Args]

    @property
    def description(self) -> str:
        """The text the model reads: the argument model's docstring, on one line."""
        return " ".join((self.args.__doc__ or "").split())

    def parse(self, raw: dict[str, Any] | None) -> _Args:
        """Arguments as sent by a model, checked; errors name the field and say what to send."""
        try:
            return self.args.model_validate(raw or {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            raise SqlsageError(
                INVALID_ARGUMENT,
                f"Invalid arguments for {self.name}: {problems}.",
                hint=f"Call {self.name} with: {', '.join(self.args.model_fields)}.",
            ) from None

    def openai_schema(self) -> dict[str, Any]:
        """The tool in OpenAI function-calling format."""
        schema = self.args.model_json_schema()
        schema.pop("description", None)
        schema.pop("title", None)
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": schema},
        }


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(SEMANTIC_SEARCH, SemanticSearchArgs),
        ToolSpec(SCHEMA_LOOKUP, SchemaLookupArgs),
        ToolSpec(VALIDATE_SQL, ValidateSqlArgs),
        ToolSpec(RUN_SQL, RunSqlArgs),
        ToolSpec(BUILD_CHART, BuildChartArgs),
    )
}


def tool_spec(name: str) -> ToolSpec:
    """A tool by name; an unknown name is an error the model can act on."""
    spec = TOOLS.get(name)
    if spec is None:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"There is no tool named '{name}'.",
            hint=f"Use one of: {', '.join(TOOLS)}.",
        )
    return spec


@functools.cache
def _schemas() -> tuple[dict[str, Any], ...]:
    return tuple(spec.openai_schema() for spec in TOOLS.values())


def tool_schemas() -> list[dict[str, Any]]:
    """Every tool in OpenAI function-calling format, for bind_tools (built once: ~1.3 ms each
    time otherwise, on every model turn). Copies, so a caller cannot change the registry."""
    return copy.deepcopy(list(_schemas()))
