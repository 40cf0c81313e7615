"""Data-driven validate_sql cases from tests/fixtures/validate/*.sql (see the headers there)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tools.validate_sql import validate_sql

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "validate"


@dataclass
class Case:
    """One SQL case and what validate_sql must say about it."""

    file: str
    number: int
    expect: str
    code: str | None = None
    dialect: str = "sqlite"
    output: str | None = None
    hint: str | None = None
    message: str | None = None
    sql_lines: list[str] = field(default_factory=list)

    @property
    def sql(self) -> str:
        return "\n".join(self.sql_lines).strip()

    @property
    def id(self) -> str:
        return f"{self.file}:{self.number}:{self.expect}:{self.sql[:40]}"


def load_cases() -> list[Case]:
    """Split each fixture file at `-- expect:` lines; `-- key: value` lines set options."""
    cases: list[Case] = []
    for path in sorted(FIXTURES.glob("*.sql")):
        current: Case | None = None
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("-- expect:"):
                verdict = line.split(":", 1)[1].split()
                current = Case(
                    path.name, len(cases) + 1, verdict[0], verdict[1] if len(verdict) > 1 else None
                )
                cases.append(current)
                continue
            if current is None:
                continue
            key, _, value = line.removeprefix("-- ").partition(": ")
            if line.startswith("-- ") and key in ("dialect", "output", "hint", "message"):
                setattr(current, key, value.strip())
            else:
                current.sql_lines.append(line)
    return cases


CASES = load_cases()


def test_fixtures_are_loaded() -> None:
    assert len(CASES) > 60
    assert {c.expect for c in CASES} == {"accept", "reject"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_validate_case(case: Case, sample_db: object) -> None:
    result = validate_sql(
        case.sql,
        dialect=case.dialect,
        catalog=sample_db.catalog,  # type: ignore[attr-defined]
        max_rows=1000,
    )
    if case.expect == "accept":
        assert result.valid, [e.message for e in result.errors]
        if case.output is not None:
            assert result.sql == case.output
        return
    assert not result.valid, f"accepted: {result.sql}"
    first = result.errors[0]
    assert first.code == case.code, first
    assert first.message and first.hint, "every error says what was wrong and how to fix it"
    if case.hint:
        assert case.hint in first.hint
        suggested = re.search(r"Did you mean '([^']+)'\?", case.hint)
        if suggested and first.code in ("unknown_table", "unknown_column"):
            # the suggestion as data, for clients that fix the SQL themselves (MCP)
            assert first.did_you_mean == suggested.group(1)
    if case.message:
        assert case.message in first.message
