"""Session fixtures for the real databases; the helpers behind them live in service_dbs.py."""

import os
import sys
from pathlib import Path
from typing import Any

import pytest

# Appended, not prepended: tests/agents, tests/graphs and tests/evals must never shadow the real
# agents, graphs and evals packages (tests is itself a package, so they are tests.agents etc.).
sys.path.append(str(Path(__file__).parent))

from service_dbs import (
    mariadb_available,
    mariadb_chinook,
    postgres_available,
    postgres_chinook,
    require_or_skip,
    require_shared_data,
)


@pytest.fixture(scope="session", autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """XDG_CACHE_HOME for the run (and every process it starts): `sqlsage mcp` keeps its start
    snapshot there, never in the user's own ~/.cache."""
    folder = tmp_path_factory.mktemp("xdg-cache")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout (Spider, BIRD, Chinook)."""
    return require_shared_data()


@pytest.fixture(scope="session")
def pg_chinook() -> dict[str, Any]:
    """Chinook on PostgreSQL: admin_url, ro_url (role sqlsage_ro) and the table names."""
    require_or_skip(postgres_available(), "PostgreSQL")
    require_shared_data()
    return postgres_chinook()


@pytest.fixture(scope="session")
def maria_chinook() -> dict[str, Any]:
    """Chinook on MariaDB: admin_url, ro_url (user sqlsage_ro) and the table names."""
    require_or_skip(mariadb_available(), "MariaDB")
    require_shared_data()
    return mariadb_chinook()


@pytest.fixture(scope="session")
def sample_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample database, generated once for the session."""
    from server.sample_db import ensure_sample_db

    return ensure_sample_db(tmp_path_factory.mktemp("sample-data"))


@pytest.fixture(scope="session")
def sample_db(sample_path: Path) -> Any:
    """A read-only Database over the sample (shared by tests that only read)."""
    from tools.databases import Database, DatabaseConfig

    database = Database(DatabaseConfig(name="sample", url=f"sqlite:///{sample_path}"))
    yield database
    database.dispose()


@pytest.fixture
def server_writable_dir() -> Any:
    """A /tmp folder the database servers' OS users could write into, were they allowed to."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="sqlsage-ro-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample plus its knowledge index (built once: it takes seconds); tests copy it."""
    from server.resources import build_resources
    from server.settings import Settings

    folder = tmp_path_factory.mktemp("graph-prepared")
    resources = build_resources(Settings(data_dir=folder))
    try:
        resources.index.ensure(resources.database())
    finally:
        resources.index.close()
        resources.close()
    return folder
