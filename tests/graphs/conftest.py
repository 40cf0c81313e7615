"""Fixtures for the graph tests: module data directories copied from the prepared one
(tests/conftest.py builds it, with its knowledge index, once per run)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.resources import Resources, build_resources
from server.settings import Settings


def copy_data_dir(prepared: Path, target: Path) -> Path:
    """A private copy of the prepared data directory (sample, index; no sessions yet)."""
    shutil.copytree(prepared, target)
    return target


@pytest.fixture(scope="module")
def data_dir(prepared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory per test module; tests keep apart by using their own sessions."""
    return copy_data_dir(prepared_dir, tmp_path_factory.mktemp("graph-module") / "data")


@pytest.fixture(scope="module")
def resources(data_dir: Path) -> Iterator[Resources]:
    """Resources over the module's data directory (the sample is the default database)."""
    built = build_resources(Settings(data_dir=data_dir))
    yield built
    if built._index is not None:  # closing through .index would first open it
        built._index.close()
    built.close()
