"""Knowledge files: loading with file:line errors, checking against the sample, safe appends."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import yaml

from memory.knowledge import (
    Example,
    GlossaryTerm,
    Knowledge,
    TableNotes,
    add_example,
    check_knowledge,
    knowledge_path,
    load_knowledge,
)
from tools.databases import Database, DatabaseConfig
from tools.errors import SqlsageError
from tools.run_sql import run_sql

REPO = Path(__file__).resolve().parents[2]

FULL = """\
# Notes the schema does not carry.
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
"""


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def load_error(path: Path) -> SqlsageError:
    with pytest.raises(SqlsageError) as info:
        load_knowledge(path)
    assert info.value.code == "invalid_config" and info.value.hint
    return info.value


# ---- loading -----------------------------------------------------------------------------
def test_full_file_round_trips(tmp_path: Path, sample_db: Database) -> None:
    knowledge = load_knowledge(write(tmp_path / "sample.yml", FULL))
    assert knowledge.path == tmp_path / "sample.yml"
    assert knowledge.tables == {
        "orders": TableNotes(
            description="One row per customer order.",
            columns={
                "status": "delivered, shipped, pending or cancelled; cancelled orders have no revenue"
            },
        )
    }
    assert knowledge.glossary == [
        GlossaryTerm(
            term="revenue",
            definition="Sum of quantity * unit_price * (1 - discount) over non-cancelled orders.",
            sql="SUM(oi.quantity * oi.unit_price * (1 - oi.discount))",
            tables=["order_items", "orders"],
        )
    ]
    assert knowledge.examples == [
        Example(
            question="How many customers are in Germany?",
            sql="SELECT COUNT(*) FROM customers WHERE country = 'Germany'",
        )
    ]
    assert knowledge.line_of("tables", "orders", "columns", "status") == 6
    assert knowledge.line_of("glossary", 0, "sql") == 10
    assert knowledge.line_of("examples", 0) == 13

    checked = check_knowledge(knowledge, sample_db)
    assert checked.problems == []
    assert checked.knowledge.model_dump() == knowledge.model_dump()

    dumped = yaml.safe_dump(knowledge.model_dump(exclude={"path"}), sort_keys=False)
    again = load_knowledge(write(tmp_path / "again.yml", dumped))
    assert again.model_dump(exclude={"path"}) == knowledge.model_dump(exclude={"path"})


def test_missing_or_empty_file_is_empty_knowledge(tmp_path: Path) -> None:
    assert load_knowledge(tmp_path / "nope.yml") == Knowledge(path=tmp_path / "nope.yml")
    empty = load_knowledge(write(tmp_path / "empty.yml", "# nothing yet\n"))
    assert (empty.tables, empty.glossary, empty.examples) == ({}, [], [])
    started = load_knowledge(write(tmp_path / "started.yml", "tables:\n  orders:\nexamples:\n"))
    assert started.tables == {"orders": TableNotes()} and started.examples == []


def test_knowledge_path(tmp_path: Path) -> None:
    assert knowledge_path(tmp_path, "sample") == tmp_path / "sample.yml"
    with pytest.raises(SqlsageError) as info:
        knowledge_path(tmp_path, "../etc/passwd")
    assert info.value.code == "invalid_argument"


def test_yaml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yml", "tables:\n  orders:\n    description: a: b\n")
    error = load_error(path)
    assert f"{path}:3:19:" in error.message
    assert "mapping values are not allowed here" in error.message


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        pytest.param(
            "tables: {}\nexampels: []\n",
            2,
            "unknown key 'exampels'; expected one of tables, glossary, examples. "
            "Did you mean 'examples'?",
            id="unknown-section",
        ),
        pytest.param(
            "examples:\n  - question: a\n    sql: SELECT 1\n  - question: b\n",
            4,
            "examples[1]: 'sql' is required",
            id="example-without-sql",
        ),
        pytest.param(
            "examples:\n  - question: a\n    sql: 42\n",
            3,
            "examples[0].sql: expected text, got the int 42",
            id="sql-not-text",
        ),
        pytest.param(
            "tables:\n  orders:\n    description: x\n    columns: [status]\n",
            4,
            "tables.orders.columns: expected a mapping",
            id="columns-not-a-mapping",
        ),
        pytest.param(
            "glossary:\n  - term: t\n    definition: d\n    tables: orders\n",
            4,
            "glossary[0].tables: expected a list",
            id="tables-not-a-list",
        ),
        pytest.param(
            "glossary:\n  - term: t\n    definition: '  '\n",
            3,
            "glossary[0].definition: must not be empty",
            id="blank-definition",
        ),
        pytest.param(
            "examples:\n  - How many orders?\n",
            2,
            "examples[0]: expected a mapping with question, sql, got text",
            id="example-as-text",
        ),
        pytest.param(
            "tables:\n  orders: {}\n  customers: {}\n  orders: {}\n",
            4,
            "duplicate key 'orders' (first at line 2)",
            id="duplicate-key",
        ),
        pytest.param("- a\n- b\n", 1, "expected a mapping of sections", id="top-level-list"),
    ],
)
def test_structure_error_names_the_line(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    path = write(tmp_path / "shape.yml", text)
    error = load_error(path)
    assert f"{path}:{line}: " in error.message
    assert expected in error.message


# ---- checking against the database -------------------------------------------------------
def test_invalid_example_sql_is_reported_with_its_line_and_dropped(
    tmp_path: Path, sample_db: Database
) -> None:
    text = (
        "examples:\n"
        "  - question: Customer names?\n"
        "    sql: SELECT nme FROM customers\n"
        "  - question: Remove the cancelled orders\n"
        "    sql: DELETE FROM orders WHERE status = 'cancelled'\n"
        "  - question: How many orders?\n"
        "    sql: SELECT COUNT(*) FROM orders\n"
    )
    knowledge = load_knowledge(write(tmp_path / "sample.yml", text))
    checked = check_knowledge(knowledge, sample_db)
    assert [p.line for p in checked.problems] == [3, 5]
    assert all(p.path == tmp_path / "sample.yml" for p in checked.problems)
    unknown, delete = (p.message for p in checked.problems)
    assert "Column 'nme' not found" in unknown and "Did you mean 'name'?" in unknown
    assert "'DELETE' statements are not allowed" in delete and "read-only" in delete
    assert checked.knowledge.examples == [
        Example(question="How many orders?", sql="SELECT COUNT(*) FROM orders")
    ]
    assert checked.knowledge.line_of("examples", 0) == 6
    assert len(knowledge.examples) == 3  # the input is not changed


def test_notes_on_unknown_tables_and_columns_suggest_a_name(
    tmp_path: Path, sample_db: Database
) -> None:
    text = (
        "tables:\n"
        "  ordrs:\n"
        "    description: typo in the table\n"
        "  orders:\n"
        "    columns:\n"
        "      status: fine\n"
        "      stauts: typo in the column\n"
        "  zzz_nothing_like_it: {}\n"
    )
    checked = check_knowledge(load_knowledge(write(tmp_path / "s.yml", text)), sample_db)
    assert [p.line for p in checked.problems] == [2, 7, 8]
    table, column, far = (p.message for p in checked.problems)
    assert "Table 'ordrs' does not exist" in table and "Did you mean 'orders'?" in table
    assert "Column 'stauts' does not exist in table 'orders'" in column
    assert "Did you mean 'status'?" in column
    assert "Known: " in far and "customers" in far
    assert set(checked.knowledge.tables) == {"ordrs", "orders", "zzz_nothing_like_it"}  # kept


def test_glossary_sql_is_checked_and_dropped_when_invalid(
    tmp_path: Path, sample_db: Database
) -> None:
    text = (
        "glossary:\n"
        "  - term: revenue\n"
        "    definition: sales after discounts\n"
        "    sql: SUM(oi.quantity * oi.unit_price * (1 - oi.discount))\n"
        "    tables: [order_items, orders]\n"
        "  - term: margin\n"
        "    definition: revenue minus cost\n"
        "    sql: SUM(oi.quantity * p.unit_cst)\n"
        "    tables: [order_items, products]\n"
        "  - term: loyalty\n"
        "    definition: repeat buyers\n"
        "    tables: [customer]\n"
    )
    checked = check_knowledge(load_knowledge(write(tmp_path / "g.yml", text)), sample_db)
    assert [p.line for p in checked.problems] == [8, 12]
    assert "glossary term 'margin'" in checked.problems[0].message
    assert "Did you mean 'unit_cost'?" in checked.problems[0].message
    assert "Did you mean 'customers'?" in checked.problems[1].message
    revenue, margin, loyalty = checked.knowledge.glossary
    assert revenue.sql is not None and margin.sql is None and margin.term == "margin"
    assert loyalty.tables == ["customer"]


def test_sample_knowledge_file_is_clean_and_its_examples_run(sample_db: Database) -> None:
    knowledge = load_knowledge(REPO / "server" / "sample_knowledge.yml")
    checked = check_knowledge(knowledge, sample_db)
    assert [str(p) for p in checked.problems] == []
    assert 6 <= len(knowledge.glossary) <= 10 and all(t.sql for t in knowledge.glossary)
    assert 10 <= len(knowledge.examples) <= 15
    assert {"revenue", "gross margin", "average order value", "return rate", "active customer"} <= {
        t.term for t in knowledge.glossary
    }
    for example in knowledge.examples:
        assert run_sql(sample_db, example.sql).row_count > 0, example.question


# ---- appending ---------------------------------------------------------------------------
GERMANY = Example(
    question="How many customers are in Germany?",
    sql="SELECT COUNT(*) FROM customers WHERE country = 'Germany'",
)


def test_add_example_creates_a_missing_file(tmp_path: Path, sample_db: Database) -> None:
    path = tmp_path / "knowledge" / "sample.yml"
    added = add_example(path, "  How many customers are in Germany?  ", GERMANY.sql, sample_db)
    assert added == GERMANY
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Knowledge about database 'sample'")
    assert load_knowledge(path).examples == [GERMANY]


def test_add_example_keeps_comments_byte_for_byte(tmp_path: Path, sample_db: Database) -> None:
    head = (
        "# Hand-written notes: keep me exactly.\n"
        "tables:\n"
        "  orders:   # odd spacing on purpose\n"
        "    description: 'single quoted'   # and a comment\n"
        "examples:\n"
        "    # an indented comment\n"
        "    -   question: How many orders?\n"
        "        sql: |\n"
        "          SELECT COUNT(*)\n"
        "          FROM orders\n"
    )
    tail = "# the glossary comes last\nglossary: []\n"
    path = write(tmp_path / "sample.yml", head + tail)
    add_example(path, GERMANY.question, GERMANY.sql, sample_db)
    text = path.read_text(encoding="utf-8")
    assert text.startswith(head) and text.endswith(tail)
    inserted = text[len(head) : -len(tail)]
    assert inserted.startswith("    -   question: How many customers are in Germany?\n")
    assert load_knowledge(path).examples[-1] == GERMANY


def test_add_example_to_a_file_without_examples(tmp_path: Path, sample_db: Database) -> None:
    original = "tables:\n  orders:\n    description: One row per order.  # keep\n"
    path = write(tmp_path / "sample.yml", original)
    add_example(path, GERMANY.question, GERMANY.sql, sample_db)
    text = path.read_text(encoding="utf-8")
    assert text.startswith(original) and "\nexamples:\n" in text
    knowledge = load_knowledge(path)
    assert knowledge.examples == [GERMANY]
    assert knowledge.tables["orders"].description == "One row per order."


def test_add_example_keeps_windows_line_endings(tmp_path: Path, sample_db: Database) -> None:
    original = b"# notes\r\nexamples:\r\n  - question: a\r\n    sql: SELECT 1\r\n"
    path = tmp_path / "crlf.yml"
    path.write_bytes(original)
    add_example(path, GERMANY.question, GERMANY.sql, sample_db)
    data = path.read_bytes()
    assert data.startswith(original) and b"\n" not in data.replace(b"\r\n", b"")


def test_duplicate_example_is_not_added(tmp_path: Path, sample_db: Database) -> None:
    path = write(tmp_path / "sample.yml", FULL)
    before = path.read_bytes()
    assert add_example(path, GERMANY.question, GERMANY.sql, sample_db) == GERMANY
    assert path.read_bytes() == before
    add_example(path, GERMANY.question, GERMANY.sql + " ", sample_db)  # different SQL text
    assert len(load_knowledge(path).examples) == 2


@pytest.mark.parametrize(
    ("question", "sql", "code"),
    [
        (
            "Drop the cancelled ones",
            "DELETE FROM orders WHERE status = 'cancelled'",
            "not_read_only",
        ),
        ("Names?", "SELECT nme FROM customers", "unknown_column"),
        ("Two?", "SELECT 1; SELECT 2", "multiple_statements"),
        ("   ", "SELECT 1", "invalid_argument"),
    ],
)
def test_invalid_example_is_refused_and_the_file_is_untouched(
    tmp_path: Path, sample_db: Database, question: str, sql: str, code: str
) -> None:
    path = write(tmp_path / "sample.yml", FULL)
    before = path.read_bytes()
    with pytest.raises(SqlsageError) as info:
        add_example(path, question, sql, sample_db)
    assert info.value.code == code and info.value.hint
    assert path.read_bytes() == before
    with pytest.raises(SqlsageError):
        add_example(tmp_path / "new.yml", question, sql, sample_db)
    assert not (tmp_path / "new.yml").exists()


TRICKY_SQL = [
    "SELECT name FROM customers WHERE name = 'O''Brien: #1'",
    'SELECT name AS "a: b # c" FROM customers',
    "SELECT name\nFROM customers\n-- note: # not a YAML comment\nWHERE city = 'Köln'\n",
    "\n  SELECT name\n\tFROM customers\r\n  WHERE country = 'x'  \n\n\n",
    "SELECT '|' AS bar, '>' AS gt, '- x' AS dash, '{a: [b]}' AS flow, '&a *b !c %d @e' AS marks "
    "FROM customers",
    "SELECT name FROM customers -- ends with quotes ' \" and # hash",
    "SELECT 'yes' AS no, 'null' AS \"~\" FROM customers",
    "    SELECT name\n      FROM customers\n    WHERE city LIKE '%: %'",
]
INDENTLESS = "examples:\n-     question: a\n      sql: SELECT 1\n"


@pytest.mark.parametrize("base", [FULL, INDENTLESS], ids=["indented", "indentless"])
def test_awkward_sql_and_questions_round_trip_exactly(
    tmp_path: Path, sample_db: Database, base: str
) -> None:
    path = write(tmp_path / "sample.yml", base)
    expected = load_knowledge(path).examples
    for index, sql in enumerate(TRICKY_SQL):
        question = f'Q{index}: what\'s "this" # really? - yes: no'
        expected.append(add_example(path, question, sql, sample_db))
        assert load_knowledge(path).examples == expected
    assert [e.sql for e in expected[1:]] == TRICKY_SQL  # stored as given, not normalized
    assert path.read_text(encoding="utf-8").startswith(base)


def _append_many(path: str, db_path: str, tag: str, count: int, barrier: Any) -> None:
    """Runs in a spawned process: append `count` examples as fast as possible."""
    database = Database(DatabaseConfig(name="sample", url=f"sqlite:///{db_path}"))
    try:
        database.catalog.table("customers")  # reflect before the race starts
        barrier.wait(timeout=120)
        for index in range(count):
            sql = f"SELECT COUNT(*) FROM customers WHERE customer_id > {index}"
            add_example(Path(path), f"{tag} question {index}?", sql, database)
    finally:
        database.dispose()


def test_two_processes_appending_concurrently_lose_nothing(
    tmp_path: Path, sample_path: Path
) -> None:
    path = write(tmp_path / "sample.yml", FULL)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [
        context.Process(target=_append_many, args=(str(path), str(sample_path), tag, 20, barrier))
        for tag in ("alpha", "beta")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0]
    questions = [e.question for e in load_knowledge(path).examples]
    assert len(questions) == 41
    for tag in ("alpha", "beta"):
        assert [q for q in questions if q.startswith(tag)] == [
            f"{tag} question {i}?" for i in range(20)
        ]
    assert path.read_text(encoding="utf-8").startswith(FULL)
