"""DatabaseRegistry: configured names -> read-only engines with their sqlglot dialect."""

from __future__ import annotations

import difflib
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from tools.errors import (
    DATABASE_UNREACHABLE,
    INVALID_CONFIG,
    QUERY_FAILED,
    UNKNOWN_DATABASE,
    SqlsageError,
)
from tools.readonly import ReadOnlyDriver, driver_for

if TYPE_CHECKING:
    from tools.catalog import SchemaCatalog

# SQLAlchemy backend name -> sqlglot dialect. Unlisted backends try the same name in sqlglot.
SQLGLOT_DIALECTS = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mssql": "tsql",
    "oracle": "oracle",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "redshift": "redshift",
    "duckdb": "duckdb",
    "trino": "trino",
    "presto": "presto",
    "clickhouse": "clickhouse",
    "databricks": "databricks",
    "hive": "hive",
    "spark": "spark",
}
# Bare schemes get the drivers this package installs (SQLAlchemy would pick psycopg2/mysqlclient).
_DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


@dataclass(frozen=True)
class DatabaseConfig:
    """What the tools need to know about one database (mirrors `[databases.NAME]`)."""

    name: str
    url: str
    description: str = ""
    max_rows: int = 1000
    timeout_s: float = 30.0
    schemas: tuple[str, ...] | None = None
    include_tables: tuple[str, ...] | None = None
    exclude_tables: tuple[str, ...] = ()
    exclude_columns: tuple[str, ...] = ()
    comments_file: str | None = None


def normalize_url(url: str) -> URL:
    """Parse a SQLAlchemy URL and give bare postgresql:// and mysql:// the bundled drivers."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise SqlsageError(
            INVALID_CONFIG,
            f"'{mask_url(url)}' is not a database URL.",
            hint="Use a SQLAlchemy URL such as sqlite:///shop.db, "
            "postgresql://user@host:5432/db or mysql://user@host:3306/db.",
        ) from None
    driver = _DEFAULT_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?=@)", re.I)


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ***, safe for logs and errors."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return _PASSWORD_IN_URL.sub(lambda m: m.group("head") + "***", url)


class Database:
    """One configured database: a lazily built read-only engine, its dialect and catalog."""

    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config
        self.name = config.name
        self.url = normalize_url(config.url)
        self.driver: ReadOnlyDriver = driver_for(self.url)
        backend = self.url.get_backend_name()
        self.dialect = SQLGLOT_DIALECTS.get(backend, backend)
        self._engine: Engine | None = None
        self._catalog: SchemaCatalog | None = None
        self._lock = threading.Lock()

    @property
    def masked_url(self) -> str:
        """The URL without its password."""
        return mask_url(self.url)

    @property
    def engine(self) -> Engine:
        """The pooled read-only engine, built on first use."""
        with self._lock:
            if self._engine is None:
                try:
                    self._engine = self.driver.create_engine(self.config.timeout_s)
                except (NoSuchModuleError, ModuleNotFoundError) as exc:
                    raise SqlsageError(
                        INVALID_CONFIG,
                        f"No driver for '{self.url.drivername}' (database '{self.name}'): {exc}.",
                        hint="Install the SQLAlchemy dialect package for this database.",
                    ) from None
            return self._engine

    @property
    def catalog(self) -> SchemaCatalog:
        """The exposed schema of this database (reflected lazily, cached)."""
        from tools.catalog import SchemaCatalog

        with self._lock:
            if self._catalog is None:
                self._catalog = SchemaCatalog(self)
            return self._catalog

    @contextmanager
    def raw_connection(self) -> Iterator[Any]:
        """A pooled DB-API connection; connection failures become database_unreachable."""
        try:
            raw = self.engine.raw_connection()
        except SqlsageError:
            raise
        except Exception as exc:  # every driver has its own connect errors
            raise self.unreachable(exc) from None
        try:
            yield raw
        finally:
            raw.close()

    def unreachable(self, exc: BaseException) -> SqlsageError:
        """A clear error naming the host and port (never the password)."""
        where = (
            f"SQLite file '{self.url.database}'"
            if self.driver.kind == "sqlite"
            else f"{self.url.host or 'localhost'}:{self.url.port or 'default port'}"
        )
        detail = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc), self)
        return SqlsageError(
            DATABASE_UNREACHABLE,
            f"Cannot reach database '{self.name}' at {where}: {detail}",
            hint="Check that the server is running and the URL, user and network are right "
            f"({self.masked_url}).",
        )

    def failure(self, exc: BaseException, sql: str | None = None) -> SqlsageError:
        """A driver error as the error model: unreachable when the connection failed."""
        from sqlalchemy.exc import DBAPIError, OperationalError

        original: BaseException = exc
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            original = exc.orig
        if isinstance(exc, OperationalError) and exc.connection_invalidated:
            return self.unreachable(original)
        text = scrub(str(original).strip(), self) or type(original).__name__
        return SqlsageError(
            QUERY_FAILED,
            f"Database '{self.name}' refused the query: {text}",
            hint="Fix the SQL using the message above; schema_lookup shows the exact names.",
            sql=sql,
        )

    def dispose(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


def scrub(text: str, db: Database) -> str:
    """Remove the database password from a driver message."""
    password = db.url.password
    if password:
        text = text.replace(str(password), "***")
    return text


@dataclass
class DatabaseRegistry:
    """Configured databases by name. Unknown names fail loudly with the known ones listed."""

    _databases: dict[str, Database] = field(default_factory=dict)

    @classmethod
    def from_configs(cls, configs: Iterable[DatabaseConfig]) -> DatabaseRegistry:
        """A registry holding these databases."""
        registry = cls()
        for config in configs:
            registry.register(config)
        return registry

    def register(self, config: DatabaseConfig) -> Database:
        """Add (or replace) a database under its name."""
        database = Database(config)
        old = self._databases.get(config.name)
        if old is not None:
            old.dispose()
        self._databases[config.name] = database
        return database

    def names(self) -> list[str]:
        """The configured names, in configuration order."""
        return list(self._databases)

    def get(self, name: str) -> Database:
        """The database called `name`, or an unknown_database error with suggestions."""
        try:
            return self._databases[name]
        except KeyError:
            pass
        known = ", ".join(self._databases) or "(none configured)"
        close = difflib.get_close_matches(name, list(self._databases), n=1)
        hint = f"Did you mean '{close[0]}'? " if close else ""
        raise SqlsageError(
            UNKNOWN_DATABASE,
            f"Unknown database '{name}'. Known: {known}.",
            hint=hint + "Add it under [databases.NAME] in sqlsage.toml.",
        )

    def close(self) -> None:
        """Dispose of every engine."""
        for database in self._databases.values():
            database.dispose()
