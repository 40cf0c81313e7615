"""Real PostgreSQL and MariaDB databases for the integration tests: Chinook and a read-only role.

Both loaders are idempotent: a loaded database carries a comment holding the loader version, the
script's hash and the checksum taken when the load finished. A later run recomputes the checksum
and reuses the database when all three still match, so a test that wrote to it (or a load that
died half-way) is repaired by reloading. A server-side lock serialises concurrent pytest runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa
from psycopg import sql

HOST = "127.0.0.1"
PG_PORT = 5432
MARIADB_PORT = 3306
ADDRESSES = {"PostgreSQL": f"{HOST}:{PG_PORT}", "MariaDB": f"{HOST}:{MARIADB_PORT}"}
REQUIRE_ENV = "SQLSAGE_REQUIRE_SERVICES"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

DB_NAME = "sqlsage_chinook"
RO_USER = "sqlsage_ro"
RO_PASSWORD = "sqlsage_ro"
# Bump when the load or the grants change, so copies made by an older loader are rebuilt.
LOADER_VERSION = 1
LOCK_NAME = "sqlsage_chinook_load"
PG_LOCK_KEY = int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big", signed=True)
LOCK_TIMEOUT_S = 120
TRACK_ROWS = 3503
# The scripts' own names: MariaDB table names are case-sensitive on Linux.
PG_TABLES = [
    "album",
    "artist",
    "customer",
    "employee",
    "genre",
    "invoice",
    "invoice_line",
    "media_type",
    "playlist",
    "playlist_track",
    "track",
]
MARIADB_TABLES = [
    "Album",
    "Artist",
    "Customer",
    "Employee",
    "Genre",
    "Invoice",
    "InvoiceLine",
    "MediaType",
    "Playlist",
    "PlaylistTrack",
    "Track",
]


def postgres_available() -> bool:
    """True when PostgreSQL accepts a login as postgres within 2 s."""
    try:
        with psycopg.connect(_pg_conninfo("test"), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def mariadb_available() -> bool:
    """True when MariaDB accepts a login as root within 2 s."""
    try:
        _mariadb_connect(connect_timeout=2).close()
    except pymysql.MySQLError:
        return False
    return True


def require_or_skip(available: bool, what: str, address: str | None = None) -> None:
    """Skip the test when a service is down, or fail it when SQLSAGE_REQUIRE_SERVICES=1."""
    if available:
        return
    if address is None:
        if what not in ADDRESSES:
            raise ValueError(f"Unknown service '{what}'. Known: {', '.join(ADDRESSES)}.")
        address = ADDRESSES[what]
    if _services_required():
        pytest.fail(f"{what} is required ({REQUIRE_ENV}=1) but not reachable at {address}")
    pytest.skip(f"{what} not reachable at {address}; start it to run these tests")


def require_shared_data() -> Path:
    """The ../shared/data folder beside the checkout; skip (or fail) the test when it is absent."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    reason = (
        f"../shared/data not found at {SHARED_DATA}: "
        "the Spider/BIRD/Chinook data is only beside the developers' checkout"
    )
    if _services_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)")
    pytest.skip(reason)


def postgres_chinook() -> dict[str, Any]:
    """PostgreSQL database sqlsage_chinook holding Chinook, plus the SELECT-only role sqlsage_ro."""
    script = (SHARED_DATA / "chinook" / "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
    marker = _marker(script)
    admin_url = f"postgresql+psycopg://postgres@{HOST}:{PG_PORT}/{DB_NAME}"
    with psycopg.connect(_pg_conninfo("test"), autocommit=True) as lock_conn:
        # Session-level lock: released by the unlock below, or when the connection closes.
        lock_conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'")
        lock_conn.execute("SELECT pg_advisory_lock(%s)", (PG_LOCK_KEY,))
        try:
            comment = _pg_comment(lock_conn)
            current = comment is not None and comment == f"{marker}{checksum_postgres(admin_url)}"
            if not current:
                _pg_load(lock_conn, script, admin_url)
            _pg_grant_read_only()
            if not current:
                # Taken after the grants: the checksum covers ACLs, so a stray GRANT means a reload.
                comment = f"{marker}{checksum_postgres(admin_url)}"
                lock_conn.execute(
                    sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                        sql.Identifier(DB_NAME), sql.Literal(comment)
                    )
                )
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", (PG_LOCK_KEY,))
    return {
        "admin_url": admin_url,
        "ro_url": f"postgresql+psycopg://{RO_USER}:{RO_PASSWORD}@{HOST}:{PG_PORT}/{DB_NAME}",
        "tables": list(PG_TABLES),
    }


def mariadb_chinook() -> dict[str, Any]:
    """MariaDB database sqlsage_chinook holding Chinook, plus the SELECT-only user sqlsage_ro."""
    script = (SHARED_DATA / "chinook" / "Chinook_MySql.sql").read_text(encoding="utf-8")
    marker = _marker(script)
    admin_url = f"mysql+pymysql://root@{HOST}:{MARIADB_PORT}/{DB_NAME}"
    conn = _mariadb_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", (LOCK_NAME, LOCK_TIMEOUT_S))
            if cur.fetchone() != (1,):
                raise TimeoutError(f"MariaDB lock '{LOCK_NAME}' not granted in {LOCK_TIMEOUT_S} s.")
            try:
                cur.execute(
                    "SELECT schema_comment FROM information_schema.schemata WHERE schema_name = %s",
                    (DB_NAME,),
                )
                row = cur.fetchone()
                if row is None or row[0] != f"{marker}{checksum_mariadb(admin_url)}":
                    _mariadb_load(cur, script, marker, admin_url)
                _mariadb_grant_read_only(cur)
            finally:
                cur.execute("SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
    finally:
        conn.close()
    return {
        "admin_url": admin_url,
        "ro_url": f"mysql+pymysql://{RO_USER}:{RO_PASSWORD}@{HOST}:{MARIADB_PORT}/{DB_NAME}",
        "tables": list(MARIADB_TABLES),
    }


def checksum_postgres(admin_url: str) -> str:
    """sha256 over the schema objects, their ACLs, columns and every table's rows (PostgreSQL)."""
    user_schemas = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
    catalog = (
        "SELECT datacl::text FROM pg_database WHERE datname = current_database()",
        f"SELECT n.nspname::text, n.nspacl::text FROM pg_namespace n WHERE {user_schemas}",
        "SELECT n.nspname::text, c.relname::text, c.relkind::text, c.relacl::text FROM pg_class c"
        f" JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {user_schemas}",
        "SELECT n.nspname::text, c.relname::text, a.attname::text,"
        " format_type(a.atttypid, a.atttypmod), a.attnotnull FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE a.attnum > 0 AND NOT a.attisdropped AND {user_schemas}",
        "SELECT n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid)"
        f" FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {user_schemas}",
        "SELECT tgrelid::regclass::text, tgname::text FROM pg_trigger WHERE NOT tgisinternal",
        "SELECT defaclrole::regrole::text, defaclobjtype::text, defaclacl::text"
        " FROM pg_default_acl",
    )
    tables = (
        "SELECT n.nspname::text, c.relname::text FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE c.relkind IN ('r', 'p', 'm') AND {user_schemas}"
    )
    return _checksum(admin_url, catalog, tables)


def checksum_mariadb(admin_url: str) -> str:
    """sha256 over the tables, columns, indexes, routines and every table's rows of a MariaDB db."""
    here = "table_schema = DATABASE()"
    catalog = (
        f"SELECT table_name, table_type FROM information_schema.tables WHERE {here}",
        "SELECT table_name, column_name, column_type, is_nullable, column_default"
        f" FROM information_schema.columns WHERE {here}",
        "SELECT table_name, index_name, seq_in_index, column_name"
        f" FROM information_schema.statistics WHERE {here}",
        "SELECT routine_name, routine_type FROM information_schema.routines"
        " WHERE routine_schema = DATABASE()",
        "SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = DATABASE()",
    )
    tables = (
        "SELECT table_schema, table_name FROM information_schema.tables"
        f" WHERE {here} AND table_type = 'BASE TABLE'"
    )
    return _checksum(admin_url, catalog, tables)


def split_statements(script: str) -> list[str]:
    """Split a SQL script on ';' outside quotes, dropping comments (no backslash escapes)."""
    statements: list[str] = []
    piece: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(script):
        token = match.group()
        if token.startswith(("/*", "--")) or token == ";":
            piece.append(script[pos : match.start()])
            pos = match.end()
        if token == ";":
            statements.append("".join(piece).strip())
            piece = []
    piece.append(script[pos:])
    statements.append("".join(piece).strip())
    return [statement for statement in statements if statement]


# Quoted text is matched whole so that ';' and comment markers inside it are left alone.
_TOKEN = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`|/\*.*?\*/|--[^\n]*|;", re.DOTALL)
# What each script does to pick its own database; the loaders create sqlsage_chinook instead.
_PG_SKIPPED = ("DROP DATABASE IF EXISTS chinook", "CREATE DATABASE chinook", r"\c chinook")
_MARIADB_SKIPPED = (
    "DROP DATABASE IF EXISTS `Chinook`",
    "CREATE DATABASE `Chinook`",
    "USE `Chinook`",
)


def _services_required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def _marker(script: str) -> str:
    script_hash = hashlib.sha256(script.encode()).hexdigest()[:16]
    return f"sqlsage-chinook v{LOADER_VERSION} script={script_hash} data="


def _without(statements: list[str], skipped: tuple[str, ...], script_name: str) -> list[str]:
    """The statements minus the database-switching ones, which must all be present."""
    found = [statement for statement in statements if statement in skipped]
    if sorted(found) != sorted(skipped):
        raise RuntimeError(f"{script_name} changed: expected {skipped} in it, found {found}.")
    return [statement for statement in statements if statement not in skipped]


def _pg_conninfo(dbname: str) -> str:
    return f"host={HOST} port={PG_PORT} user=postgres dbname={dbname}"


def _pg_comment(conn: psycopg.Connection[Any]) -> str | None:
    """The comment on sqlsage_chinook, or None when the database (or its comment) is missing."""
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (DB_NAME,),
    ).fetchone()
    return None if row is None else row[0]


def _pg_load(conn: psycopg.Connection[Any], script: str, admin_url: str) -> None:
    body = _without(split_statements(script), _PG_SKIPPED, "Chinook_PostgreSql.sql")
    name = sql.Identifier(DB_NAME)
    # FORCE ends sessions still attached to a stale copy (PostgreSQL 13+).
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(name))
    with psycopg.connect(_pg_conninfo(DB_NAME)) as load_conn:
        # Without parameters psycopg sends the whole script as one simple query: one round trip.
        load_conn.execute(";\n".join(body))
    _verify_loaded(admin_url, PG_TABLES, "track")


def _pg_grant_read_only() -> None:
    """Create or reset sqlsage_ro: it may connect and SELECT, and nothing else."""
    role, db = sql.Identifier(RO_USER), sql.Identifier(DB_NAME)
    statements = [
        sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {})"
            " THEN CREATE ROLE {}; END IF; END $$"
        ).format(sql.Literal(RO_USER), role),
        sql.SQL(
            "ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            " PASSWORD {}"
        ).format(role, sql.Literal(RO_PASSWORD)),
        # PUBLIC gets CONNECT and TEMPORARY on every new database: keep only what is granted here.
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, role),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role),
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(role),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public"
            " GRANT SELECT ON TABLES TO {}"
        ).format(role),
    ]
    with psycopg.connect(_pg_conninfo(DB_NAME), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _mariadb_connect(**kwargs: Any) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host=HOST, port=MARIADB_PORT, user="root", password="", charset="utf8mb4", **kwargs
    )


def _mariadb_load(cur: Any, script: str, marker: str, admin_url: str) -> None:
    body = _without(split_statements(script), _MARIADB_SKIPPED, "Chinook_MySql.sql")
    cur.execute(f"DROP DATABASE IF EXISTS `{DB_NAME}`")
    cur.execute(f"CREATE DATABASE `{DB_NAME}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    # The script's strings hold literal backslashes ('Cavalleria Rusticana \ Act \ ...'), as in
    # the SQLite and PostgreSQL copies; MariaDB would eat them as escapes without this mode.
    cur.execute(
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES,NO_ENGINE_SUBSTITUTION'"
    )
    cur.execute(f"USE `{DB_NAME}`")
    cur.execute("START TRANSACTION")
    for statement in body:
        cur.execute(statement)
    cur.execute("COMMIT")
    cur.execute("SET SESSION sql_mode = DEFAULT")
    cur.execute("USE `test`")
    _verify_loaded(admin_url, MARIADB_TABLES, "Track")
    comment = f"{marker}{checksum_mariadb(admin_url)}"
    cur.execute(f"ALTER DATABASE `{DB_NAME}` COMMENT = %s", (comment,))


def _mariadb_grant_read_only(cur: Any) -> None:
    """Create sqlsage_ro@'%' and @'localhost' with SELECT on sqlsage_chinook only."""
    for host in ("%", "localhost"):
        account = (RO_USER, host)
        cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (*account, RO_PASSWORD))
        cur.execute("SHOW GRANTS FOR %s@%s", account)
        grants = {re.sub(r" IDENTIFIED BY .*", "", row[0]) for row in cur.fetchall()}
        expected = {
            f"GRANT USAGE ON *.* TO `{RO_USER}`@`{host}`",
            f"GRANT SELECT ON `{DB_NAME}`.* TO `{RO_USER}`@`{host}`",
        }
        if grants != expected:
            # Only rebuilt when wrong, so a concurrent run never sees a half-granted account.
            cur.execute("DROP USER %s@%s", account)
            cur.execute("CREATE USER %s@%s IDENTIFIED BY %s", (*account, RO_PASSWORD))
            cur.execute(f"GRANT SELECT ON `{DB_NAME}`.* TO %s@%s", account)
        else:
            cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (*account, RO_PASSWORD))


def _verify_loaded(admin_url: str, tables: Iterable[str], track: str) -> None:
    engine = sa.create_engine(admin_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            found = sorted(sa.inspect(conn).get_table_names())
            track_rows = conn.exec_driver_sql(f"SELECT count(*) FROM {track}").scalar_one()
    finally:
        engine.dispose()
    if found != sorted(tables) or track_rows != TRACK_ROWS:
        raise RuntimeError(
            f"Chinook load into {admin_url} is incomplete: tables {found}, "
            f"{track} has {track_rows} rows (expected {TRACK_ROWS})."
        )


def _checksum(admin_url: str, catalog: Iterable[str], tables_query: str) -> str:
    """Hash sorted catalog rows, then each table's rows, sorted in Python to avoid collations."""
    digest = hashlib.sha256()
    engine = sa.create_engine(admin_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            quote = conn.dialect.identifier_preparer.quote
            for query in catalog:
                _hash_rows(digest, query, conn.exec_driver_sql(query))
            for schema, table in sorted(conn.exec_driver_sql(tables_query)):
                name = f"{quote(schema)}.{quote(table)}"
                _hash_rows(digest, name, conn.exec_driver_sql(f"SELECT * FROM {name}"))
    finally:
        engine.dispose()
    return digest.hexdigest()


def _hash_rows(digest: Any, label: str, rows: Iterable[Any]) -> None:
    lines = sorted(repr(tuple(row)) for row in rows)
    digest.update(f"{label}\n{len(lines)}\n".encode())
    for line in lines:
        digest.update(line.encode())
        digest.update(b"\n")


@contextmanager
def pg_parcels_schema(prefix: str) -> Iterator[str]:
    """A throwaway PostgreSQL schema holding parcels(region, parcels) with three rows
    (north 12, south 30, west 7); dropped on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(_pg_conninfo("test"))
    admin.autocommit = True
    try:
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(
            f"CREATE TABLE {schema}.parcels (region text PRIMARY KEY, parcels int NOT NULL)"
        )
        admin.execute(
            f"INSERT INTO {schema}.parcels VALUES ('north', 12), ('south', 30), ('west', 7)"
        )
        yield schema
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()
