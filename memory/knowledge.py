"""Per-database knowledge the schema does not say, kept by people in `knowledge/NAME.yml`.

Format (every section is optional; an unknown key is an error)::

    tables:
      orders:
        description: One row per customer order.
        columns:
          status: "delivered, shipped, pending or cancelled; cancelled orders have no revenue"
    glossary:
      - term: revenue
        definition: Sum of quantity * unit_price * (1 - discount) over non-cancelled orders.
        sql: SUM(oi.quantity * oi.unit_price * (1 - oi.discount))   # optional SQL expression
        tables: [order_items, orders]                                # optional
    examples:
      - question: How many customers are in Germany?
        sql: SELECT COUNT(*) FROM customers WHERE country = 'Germany'

A glossary `sql` is one SQL expression over its `tables`; qualify its columns with a table's
name, its initials (order_items -> oi, orders -> o) or a prefix only that table has.

`load_knowledge` checks the YAML and its shape (errors name file:line); `check_knowledge`
checks the content against the live schema and drops examples whose SQL does not validate;
`add_example` appends one validated example without rewriting what people wrote.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import sqlglot
from filelock import FileLock
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from sqlglot import exp

from memory.knowledge_yaml import (
    Key,
    append_example_text,
    describe_errors,
    lookup_line,
    read_document,
    shape_error,
    write_atomically,
)
from tools.errors import INVALID_ARGUMENT, INVALID_CONFIG, ErrorInfo, SqlsageError
from tools.validate_sql import validate_for

if TYPE_CHECKING:
    from tools.databases import Database

FORMAT_HINT = (
    "The format (see memory/knowledge.py): tables: {NAME: {description, columns: {COLUMN: note}}}, "
    "glossary: [{term, definition, sql?, tables?}], examples: [{question, sql}]."
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, AfterValidator(_not_blank)]
Report = Callable[[Key, str], None]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any, info: ValidationInfo) -> Any:
        # `columns:` with nothing after it is how people start a section: read it as empty.
        field = cls.model_fields[info.field_name or ""]
        if value is None and not field.is_required():
            return field.get_default(call_default_factory=True)
        return value


class TableNotes(_Strict):
    """What a table and its columns mean beyond their names and comments."""

    description: str = ""
    columns: dict[str, str] = Field(default_factory=dict)


class GlossaryTerm(_Strict):
    """A business term: what it means here, optionally as a SQL expression over some tables."""

    term: Text
    definition: Text
    sql: Text | None = None
    filter: Text | None = None  # a condition the term always implies, e.g. o.status <> 'cancelled'
    tables: list[str] = Field(default_factory=list)


class Example(_Strict):
    """A verified question and the SQL that answers it."""

    question: Text
    sql: Text


class _Sections(_Strict):
    tables: dict[str, TableNotes | None] = Field(default_factory=dict)
    glossary: list[GlossaryTerm] = Field(default_factory=list)
    examples: list[Example] = Field(default_factory=list)


class Knowledge(BaseModel):
    """The content of one knowledge file (empty when there is none)."""

    tables: dict[str, TableNotes] = Field(default_factory=dict)
    glossary: list[GlossaryTerm] = Field(default_factory=list)
    examples: list[Example] = Field(default_factory=list)
    path: Path | None = None
    # (section, name or index, ...) -> line in the file, for messages that point into it.
    _lines: dict[Key, int] = PrivateAttr(default_factory=dict)

    def line_of(self, *key: str | int) -> int | None:
        """The file line of e.g. ('examples', 3, 'sql') or ('tables', 'orders'), if known."""
        return lookup_line(self._lines, key)[0]


class KnowledgeProblem(BaseModel):
    """Something in a knowledge file that does not match the database."""

    path: Path | None
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<knowledge>'}:{self.line or '?'}: {self.message}"


class LoadedKnowledge(BaseModel):
    """Checked knowledge (invalid examples removed) and what was wrong with it."""

    knowledge: Knowledge
    problems: list[KnowledgeProblem] = Field(default_factory=list)


def knowledge_path(folder: Path, database: str) -> Path:
    """Where the knowledge of `database` lives: folder / NAME.yml."""
    if not database or database in {".", ".."} or Path(database).name != database:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"'{database}' cannot name a knowledge file.",
            hint="Use the configured database name (no slashes).",
        )
    return folder / f"{database}.yml"


# ---- loading -----------------------------------------------------------------------------
def load_knowledge(path: Path) -> Knowledge:
    """Read and shape-check a knowledge file; a missing file is empty knowledge."""
    text = _read_text(path)
    return Knowledge(path=path) if text is None else parse_knowledge(text, path)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SqlsageError(
            INVALID_CONFIG,
            f"Cannot read knowledge file {path}: {exc}.",
            hint="It must be a readable UTF-8 YAML file.",
        ) from None


def parse_knowledge(text: str, path: Path) -> Knowledge:
    """Parse knowledge YAML text; `path` only names the file in errors."""
    data, lines = read_document(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        got = type(data).__name__
        raise shape_error(
            path, lines, [((), f"expected a mapping of sections, got {got}")], FORMAT_HINT
        )
    try:
        sections = _Sections.model_validate(data)
    except ValidationError as exc:
        found = describe_errors(exc.errors(), _allowed_keys)
        raise shape_error(path, lines, found, FORMAT_HINT) from None
    knowledge = Knowledge(
        tables={name: notes or TableNotes() for name, notes in sections.tables.items()},
        glossary=sections.glossary,
        examples=sections.examples,
        path=path,
    )
    knowledge._lines = lines
    return knowledge


def _allowed_keys(loc: Key) -> list[str]:
    """The keys the mapping at `loc` may have."""
    models: dict[str, type[BaseModel]] = {"tables": TableNotes, "glossary": GlossaryTerm}
    model = _Sections if not loc else models.get(str(loc[0]), Example)
    return list(model.model_fields)


# ---- checking against the database -------------------------------------------------------
def check_knowledge(knowledge: Knowledge, database: Database) -> LoadedKnowledge:
    """Check notes, glossary SQL and examples against the schema; drop examples that fail."""
    problems: list[KnowledgeProblem] = []

    def report(key: Key, message: str) -> None:
        line = knowledge.line_of(*key)
        problems.append(KnowledgeProblem(path=knowledge.path, line=line, message=message))

    _check_notes(knowledge, database, report)
    glossary = [
        _checked_term(term, i, database, report) for i, term in enumerate(knowledge.glossary)
    ]
    kept: list[int] = []
    for index, example in enumerate(knowledge.examples):
        result = validate_for(database, example.sql)
        if result.valid:
            kept.append(index)
        else:
            report(
                ("examples", index, "sql"),
                f"Example '{example.question}' is ignored: {_explain(result.errors)}",
            )
    checked = knowledge.model_copy(
        update={"glossary": glossary, "examples": [knowledge.examples[i] for i in kept]}
    )
    renumber = {old: new for new, old in enumerate(kept)}
    checked._lines = {
        _renumbered(key, renumber): line
        for key, line in knowledge._lines.items()
        if key[:1] != ("examples",) or len(key) < 2 or key[1] in renumber
    }
    return LoadedKnowledge(knowledge=checked, problems=problems)


def _renumbered(key: Key, renumber: dict[int, int]) -> Key:
    if key[:1] == ("examples",) and len(key) > 1 and isinstance(key[1], int):
        return ("examples", renumber[key[1]], *key[2:])
    return key


def _check_notes(knowledge: Knowledge, database: Database, report: Report) -> None:
    catalog = database.catalog
    for table, notes in knowledge.tables.items():
        info = catalog.table(table)
        if info is None:
            report(("tables", table), _unknown_table(table, database))
            continue
        for column in notes.columns:
            if info.column(column) is None:
                report(
                    ("tables", table, "columns", column),
                    f"Column '{column}' does not exist in table '{info.name}'."
                    + _did_you_mean(column, [c.name for c in info.columns]),
                )


def _unknown_table(table: str, database: Database) -> str:
    names = database.catalog.table_names()
    return f"Table '{table}' does not exist in database '{database.name}'." + _did_you_mean(
        table, names
    )


def _did_you_mean(name: str, candidates: list[str]) -> str:
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    if close:
        return f" Did you mean '{by_lower[close[0]]}'?"
    return f" Known: {', '.join(candidates[:30])}."


def _explain(errors: list[ErrorInfo]) -> str:
    first = errors[0]
    at = f" (SQL line {first.line}, col {first.col})" if first.line is not None else ""
    hint = f" {first.hint}" if first.hint else ""
    more = f" ({len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return f"{first.message}{at}{hint}{more}"


def _checked_term(
    term: GlossaryTerm, index: int, database: Database, report: Report
) -> GlossaryTerm:
    """The term, without its sql when `SELECT <sql> FROM <tables>` does not validate."""
    if term.sql is None:
        for table in term.tables:
            if database.catalog.table(table) is None:
                report(("glossary", index, "tables"), _unknown_table(table, database))
        return term
    select = f"SELECT {term.sql}"
    if term.tables:
        aliases = _aliases(term.sql, term.tables, database.dialect)
        select += " FROM " + ", ".join(
            f"{t} AS {aliases[t]}" if t in aliases else t for t in term.tables
        )
    result = validate_for(database, select)
    if result.valid:
        return term
    report(
        ("glossary", index, "sql"),
        f"The SQL of glossary term '{term.term}' is ignored: {_explain(result.errors)}",
    )
    return term.model_copy(update={"sql": None})


def _aliases(sql: str, tables: list[str], dialect: str) -> dict[str, str]:
    """Table -> the qualifier the expression uses for it (initials, else a unique prefix)."""
    try:
        parsed = sqlglot.parse_one(f"SELECT {sql}", read=dialect)
    except sqlglot.errors.SqlglotError:
        return {}  # validation reports the syntax error
    bare = {t: t.split(".")[-1].lower() for t in tables}
    qualifiers = {c.table.lower() for c in parsed.find_all(exp.Column) if c.table}
    free = [t for t in tables if bare[t] not in qualifiers]
    found: dict[str, str] = {}
    for qualifier in sorted(qualifiers - set(bare.values())):
        owners = [t for t in free if _initials(bare[t]) == qualifier] or [
            t for t in free if bare[t].startswith(qualifier)
        ]
        if len(owners) == 1:
            found[owners[0]] = qualifier
            free.remove(owners[0])
    return found


def _initials(name: str) -> str:
    return "".join(word[0] for word in name.split("_") if word)


# ---- appending an example ----------------------------------------------------------------
_HEADER = (
    "# Knowledge about database '{name}' for sqlsage: table notes, a glossary and verified\n"
    "# question/SQL examples. The format is described in memory/knowledge.py.\n"
)


def add_example(path: Path, question: str, sql: str, database: Database) -> Example:
    """Validate a question/SQL pair and append it to the knowledge file (no duplicates)."""
    question = question.strip()
    if not question:
        raise SqlsageError(
            INVALID_ARGUMENT,
            "The question is empty.",
            hint="Give the plain-language question this SQL answers.",
        )
    result = validate_for(database, sql)
    if not result.valid:
        first = result.errors[0]
        raise SqlsageError(
            first.code, first.message, hint=first.hint, sql=sql, line=first.line, col=first.col
        )
    example = Example(question=question, sql=sql)  # the SQL as written, not normalized
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        text = _read_text(path)
        before = Knowledge(path=path) if text is None else parse_knowledge(text, path)
        if example in before.examples:
            return example
        if text is None:
            updated = _HEADER.format(name=database.name) + append_example_text("", example, path)
        else:
            updated = append_example_text(text, example, path)
        _prove_appended(lambda: parse_knowledge(updated, path), before, example, path)
        write_atomically(path, updated.encode("utf-8"))
        try:
            _prove_appended(lambda: load_knowledge(path), before, example, path)
        except SqlsageError:
            if text is None:
                path.unlink(missing_ok=True)
            else:
                write_atomically(path, text.encode("utf-8"))
            raise
    return example


def _prove_appended(
    load: Callable[[], Knowledge], before: Knowledge, example: Example, path: Path
) -> None:
    """Raise unless `load()` gives exactly `before` plus `example` at the end."""
    detail = ""
    try:
        after = load()
        ok = (after.tables, after.glossary, after.examples) == (
            before.tables,
            before.glossary,
            [*before.examples, example],
        )
    except SqlsageError as error:
        ok, detail = False, f" ({error.message})"
    if not ok:
        raise SqlsageError(
            INVALID_CONFIG,
            f"Could not append the example to {path} without changing its meaning{detail}; "
            "the file is unchanged.",
            hint="Add it by hand under 'examples:' (block style, '- question: ...').",
        )
