"""Fixtures shared by the tool tests."""

from __future__ import annotations

import pytest

import tools.validate_sql as validate_module


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text validate_for hands to the full validator (parse and rules), in order."""
    seen: list[str] = []
    real = validate_module.validate_sql

    def counting(sql: str, **kwargs: object) -> validate_module.ValidationResult:
        seen.append(sql)
        return real(sql, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(validate_module, "validate_sql", counting)
    return seen
