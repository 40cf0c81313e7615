"""Fixtures for the HTTP server tests: a private data directory per test (copied from the
prepared one, so the knowledge index is not rebuilt) and a stateless scripted model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .instant_model import InstantModel


@pytest.fixture
def server_dir(prepared_dir: Path, tmp_path: Path) -> Path:
    """The sample database and its index, in a data directory of this test's own."""
    target = tmp_path / "data"
    shutil.copytree(prepared_dir, target)
    return target


@pytest.fixture
def instant() -> InstantModel:
    """search -> run_sql -> build_chart -> answer, for any number of sessions at once."""
    return InstantModel()
