"""db check: can we connect, what is it, is read-only enforced, and could the login write?"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from pydantic import BaseModel, Field

from tools.databases import Database
from tools.readonly import sqlite_file_writable

_WRITE_GRANTS = re.compile(
    r"\b(ALL PRIVILEGES|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|INDEX|FILE|SUPER|GRANT OPTION|"
    r"EXECUTE|TRIGGER|EVENT|CREATE ROUTINE|LOCK TABLES|RELOAD|SHUTDOWN)\b",
    re.I,
)


class DbCheck(BaseModel):
    """What `sqlsage db check` reports for one database."""

    database: str
    url: str = Field(description="The URL with the password masked.")
    dialect: str
    server_version: str
    table_count: int
    read_only_session: bool = Field(description="The session itself refuses writes.")
    login_can_write: bool | None = Field(description="The login/role/file could write if asked.")
    warnings: list[str] = Field(default_factory=list)


def check_database(database: Database) -> DbCheck:
    """Connect and report; raises database_unreachable when it cannot connect."""
    with database.raw_connection() as raw:
        read_only = database.driver.session_read_only(raw)
        version, can_write = _inspect_login(database, raw)
    tables = len(database.catalog.table_names())
    warnings: list[str] = []
    if not read_only:
        warnings.append(
            f"Read-only enforcement is not active on sessions of '{database.name}' "
            f"({database.driver.kind}): only validation stands between a query and a write."
        )
    if can_write:
        what = "file" if database.driver.kind == "sqlite" else "login role"
        warnings.append(
            f"The {what} of '{database.name}' could write: sqlsage never will, but connect with a "
            "read-only role (see docs/read-only-roles.md) so that no bug anywhere can."
        )
    return DbCheck(
        database=database.name,
        url=database.masked_url,
        dialect=database.dialect,
        server_version=version,
        table_count=tables,
        read_only_session=read_only,
        login_can_write=can_write,
        warnings=warnings,
    )


def _fetch(raw: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor = raw.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()
        raw.rollback()


def _inspect_login(database: Database, raw: Any) -> tuple[str, bool | None]:
    kind = database.driver.kind
    if kind == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}", sqlite_file_writable(database.url.database or "")
    if kind == "postgresql":
        version = str(_fetch(raw, "SHOW server_version")[0][0])
        rows = _fetch(
            raw,
            "SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb"
            " OR has_database_privilege(current_database(), 'CREATE')"
            " OR EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname NOT LIKE 'pg\\_%'"
            "   AND n.nspname <> 'information_schema'"
            "   AND has_schema_privilege(n.oid, 'CREATE'))"
            " OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            "   WHERE c.relkind IN ('r', 'p') AND n.nspname NOT LIKE 'pg\\_%'"
            "   AND n.nspname <> 'information_schema' AND"
            "   has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE'))"
            " FROM pg_roles r WHERE r.rolname = current_user",
        )
        return f"PostgreSQL {version}", bool(rows and rows[0][0])
    if kind == "mysql":
        version = str(_fetch(raw, "SELECT VERSION()")[0][0])
        grants = " ".join(str(r[0]) for r in _fetch(raw, "SHOW GRANTS"))
        flavor = "MariaDB" if "mariadb" in version.lower() else "MySQL"
        return f"{flavor} {version}", bool(
            _WRITE_GRANTS.search(grants.split(" IDENTIFIED")[0]) or _WRITE_GRANTS.search(grants)
        )
    return "unknown", None
