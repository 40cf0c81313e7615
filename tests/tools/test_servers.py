"""PostgreSQL and MariaDB, for real: results, types, time limits stopped on the server,
db check, unreachable servers, and defense in depth with validation bypassed."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from service_dbs import SHARED_DATA, checksum_mariadb, checksum_postgres

from tools.databases import Database, DatabaseConfig
from tools.db_check import check_database
from tools.errors import SqlsageError
from tools.run_sql import execute_read_only, run_sql
from tools.schema_lookup import schema_lookup

RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"


def _db(url: str, name: str = "chinook", **kwargs: Any) -> Database:
    return Database(DatabaseConfig(name=name, url=url, **kwargs))


@pytest.fixture()
def pg(pg_chinook: dict[str, Any]) -> Iterator[Database]:
    database = _db(pg_chinook["ro_url"])
    yield database
    database.dispose()


@pytest.fixture()
def maria(maria_chinook: dict[str, Any]) -> Iterator[Database]:
    database = _db(maria_chinook["ro_url"])
    yield database
    database.dispose()


def _sqlite_chinook(sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(SHARED_DATA / "chinook" / "Chinook_Sqlite.sqlite")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# ---- results -----------------------------------------------------------------------------
@pytest.mark.postgres
def test_postgres_results_and_types(pg: Database) -> None:
    result = run_sql(
        pg,
        "SELECT g.name, COUNT(*) AS tracks, SUM(t.unit_price) AS price, "
        "MIN(i.invoice_date) AS first_sale FROM genre g JOIN track t ON "
        "t.genre_id = g.genre_id JOIN invoice_line il ON il.track_id = t.track_id "
        "JOIN invoice i ON i.invoice_id = il.invoice_id GROUP BY g.name "
        "ORDER BY tracks DESC, g.name",
        max_rows=3,
    )
    expected = _sqlite_chinook(
        "SELECT g.Name, COUNT(*) FROM Genre g JOIN Track t ON t.GenreId ="
        " g.GenreId JOIN InvoiceLine il ON il.TrackId = t.TrackId GROUP BY"
        " g.Name ORDER BY 2 DESC, g.Name LIMIT 3"
    )
    assert [(r[0], r[1]) for r in result.rows] == expected
    assert result.truncated and result.row_count == 3
    assert [c.type for c in result.columns] == ["text", "integer", "number", "datetime"]
    assert isinstance(result.rows[0][2], (int, float)) and isinstance(result.rows[0][3], str)


@pytest.mark.mariadb
def test_mariadb_results_and_types(maria: Database) -> None:
    result = run_sql(
        maria,
        "SELECT g.Name, COUNT(*) AS tracks, SUM(t.UnitPrice) AS price FROM "
        "Genre g JOIN Track t ON t.GenreId = g.GenreId GROUP BY g.Name "
        "ORDER BY tracks DESC, g.Name",
        max_rows=3,
    )
    expected = _sqlite_chinook(
        "SELECT g.Name, COUNT(*) FROM Genre g JOIN Track t ON t.GenreId ="
        " g.GenreId GROUP BY g.Name ORDER BY 2 DESC, g.Name LIMIT 3"
    )
    assert [(r[0], r[1]) for r in result.rows] == expected
    assert [c.type for c in result.columns] == ["text", "integer", "number"]


@pytest.mark.postgres
def test_postgres_names_are_spelled_as_the_database_does(pg: Database) -> None:
    page = schema_lookup(pg, tables=["TRACK"])
    assert page.tables[0].name == "track"
    assert "FOREIGN KEY (album_id) REFERENCES album(album_id)" in page.text
    assert run_sql(pg, "SELECT COUNT(*) FROM Track").rows == [[3503]]


@pytest.mark.mariadb
def test_mariadb_case_is_fixed_for_case_sensitive_tables(maria: Database) -> None:
    result = run_sql(maria, "SELECT COUNT(*) FROM track")
    assert result.rows == [[3503]] and "FROM Track" in result.sql


# ---- time limits are enforced on the server ----------------------------------------------
# Statements still running on the server whose text contains a marker, seen by the admin login.
_RUNNING_PG = (
    "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE :needle "
    "AND pid <> pg_backend_pid()"
)
_RUNNING_MARIA = (
    "SELECT COUNT(*) FROM information_schema.processlist WHERE command = 'Query' "
    "AND info LIKE :needle AND id <> CONNECTION_ID()"
)


def _running(admin_url: str, sql: str, needle: str) -> int:
    engine = sa.create_engine(admin_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql), {"needle": f"%{needle}%"}).scalar_one())
    finally:
        engine.dispose()


def _pg_running(admin_url: str, needle: str) -> int:
    return _running(admin_url, _RUNNING_PG, needle)


def _maria_running(admin_url: str, needle: str) -> int:
    return _running(admin_url, _RUNNING_MARIA, needle)


@pytest.mark.postgres
def test_postgres_runaway_query_is_stopped_on_the_server(
    pg: Database, pg_chinook: dict[str, Any]
) -> None:
    started = time.monotonic()
    with pytest.raises(SqlsageError) as info:
        run_sql(
            pg,
            RUNAWAY.replace("c(x)", "pgrunaway(x)").replace("FROM c", "FROM pgrunaway"),
            timeout_s=0.5,
        )
    assert info.value.code == "timeout" and time.monotonic() - started < 3
    assert _pg_running(pg_chinook["admin_url"], "pgrunaway") == 0
    assert run_sql(pg, "SELECT COUNT(*) FROM genre").rows == [[25]]


@pytest.mark.mariadb
def test_mariadb_runaway_query_is_stopped_on_the_server(
    maria: Database, maria_chinook: dict[str, Any]
) -> None:
    started = time.monotonic()
    with pytest.raises(SqlsageError) as info:
        run_sql(
            maria, "SELECT COUNT(*) FROM Track a, Track b, Track c, Track mrunaway", timeout_s=0.5
        )
    assert info.value.code == "timeout" and time.monotonic() - started < 4
    time.sleep(0.2)
    assert _maria_running(maria_chinook["admin_url"], "mrunaway") == 0
    assert run_sql(maria, "SELECT COUNT(*) FROM Genre").rows == [[25]]


@pytest.mark.postgres
def test_postgres_cancel_stops_the_query_on_the_server(
    pg: Database, pg_chinook: dict[str, Any]
) -> None:
    import threading

    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(SqlsageError) as info:
        run_sql(
            pg,
            "SELECT COUNT(*) FROM track a, track b, track pgcancelled",
            timeout_s=60,
            cancel=cancel,
        )
    assert info.value.code == "cancelled"
    assert _pg_running(pg_chinook["admin_url"], "pgcancelled") == 0


# ---- db check ----------------------------------------------------------------------------
@pytest.mark.postgres
def test_postgres_db_check(pg_chinook: dict[str, Any]) -> None:
    ro, admin = _db(pg_chinook["ro_url"]), _db(pg_chinook["admin_url"])
    try:
        ro_report, admin_report = check_database(ro), check_database(admin)
    finally:
        ro.dispose()
        admin.dispose()
    assert ro_report.read_only_session and admin_report.read_only_session
    assert ro_report.login_can_write is False and not ro_report.warnings
    assert admin_report.login_can_write is True
    assert any("read-only role" in w for w in admin_report.warnings)
    assert ro_report.table_count == 11 and ro_report.server_version.startswith("PostgreSQL")
    assert "sqlsage_ro:***@" in ro_report.url


@pytest.mark.mariadb
def test_mariadb_db_check(maria_chinook: dict[str, Any]) -> None:
    ro, admin = _db(maria_chinook["ro_url"]), _db(maria_chinook["admin_url"])
    try:
        ro_report, admin_report = check_database(ro), check_database(admin)
    finally:
        ro.dispose()
        admin.dispose()
    assert ro_report.read_only_session and admin_report.read_only_session
    assert ro_report.login_can_write is False
    assert admin_report.login_can_write is True and admin_report.warnings
    assert "MariaDB" in ro_report.server_version and ro_report.table_count == 11


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere",
        "mysql://someone:s3cret-pw@127.0.0.1:1/nowhere",
    ],
)
def test_unreachable_server_names_host_port_not_password(url: str) -> None:
    database = _db(url, name="far")
    with pytest.raises(SqlsageError) as info:
        run_sql(database, "SELECT 1")
    error = info.value
    assert error.code == "database_unreachable"
    assert "127.0.0.1:1" in error.message
    assert "s3cret-pw" not in str(error.to_dict()) and "***" in (error.hint or "")


# ---- defense in depth: validation bypassed -----------------------------------------------
PG_ATTEMPTS = [
    "DELETE FROM playlist_track",
    "INSERT INTO genre (genre_id, name) VALUES (9999, 'x')",
    "UPDATE genre SET name = 'x'",
    "DROP TABLE playlist_track",
    "CREATE TABLE evil (x int)",
    "CREATE TEMP TABLE evil (x int)",
    "TRUNCATE playlist_track",
    "ALTER TABLE genre ADD COLUMN evil int",
    "COMMIT; DROP TABLE playlist_track",
    "SET default_transaction_read_only = off",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SET ROLE postgres",
    "DO $$ BEGIN DELETE FROM playlist_track; END $$",
    "CALL nothing()",
    "COPY (SELECT 1) TO '{dir}/copied.csv'",
    "COPY genre FROM '/etc/hostname'",
    "SELECT lo_import('/etc/hostname')",
    "SELECT pg_read_file('/etc/hostname')",
    "VACUUM genre",
    "WITH d AS (DELETE FROM playlist_track RETURNING *) SELECT COUNT(*) FROM d",
]
MARIA_ATTEMPTS = [
    "DELETE FROM PlaylistTrack",
    "INSERT INTO Genre (GenreId, Name) VALUES (9999, 'x')",
    "UPDATE Genre SET Name = 'x'",
    "DROP TABLE PlaylistTrack",
    "CREATE TABLE evil (x int)",
    "CREATE TEMPORARY TABLE evil (x int)",
    "TRUNCATE TABLE PlaylistTrack",
    "ALTER TABLE Genre ADD COLUMN evil int",
    "COMMIT; DELETE FROM PlaylistTrack",
    "SET SESSION TRANSACTION READ WRITE",
    "SELECT * FROM Genre INTO OUTFILE '{dir}/out.csv'",
    "SELECT 'x' INTO DUMPFILE '{dir}/dump.bin'",
    "LOAD DATA INFILE '/etc/hostname' INTO TABLE Genre",
    "CALL nothing()",
    "CREATE DATABASE sqlsage_evil",
    "GRANT ALL ON *.* TO 'sqlsage_ro'@'%'",
]


def _attempt_all(database: Database, attempts: list[str], folder: Path) -> None:
    for attempt in attempts:
        sql = attempt.format(dir=folder)
        try:
            execute_read_only(database, sql, max_rows=5, timeout_s=5)
        except SqlsageError as error:
            assert error.code in ("query_failed", "timeout"), (sql, error)
            continue
        # A statement that "succeeds" must have been harmless: the next one proves the
        # session is still read-only, and the checksum below proves nothing changed.
        with pytest.raises(SqlsageError):
            execute_read_only(
                database,
                "DELETE FROM "
                + ("playlist_track" if database.driver.kind == "postgresql" else "PlaylistTrack"),
                max_rows=1,
                timeout_s=5,
            )


# Files: a superuser may read and write them, a read-only login may not; so the superuser
# run leaves those attempts out (the SELECT-only role run covers them).
PG_FILE_ATTEMPTS = ("COPY", "lo_import", "pg_read_file")
MARIA_ADMIN_ONLY = ("OUTFILE", "DUMPFILE", "DATABASE", "GRANT")


def _prove_refusals(
    server: dict[str, Any],
    login: str,
    attempts: list[str],
    admin_skips: tuple[str, ...],
    checksum: Any,
    folder: Path,
) -> None:
    before = checksum(server["admin_url"])
    database = _db(server[login])
    if login == "admin_url":
        attempts = [a for a in attempts if not any(k in a for k in admin_skips)]
    try:
        _attempt_all(database, attempts, folder)
    finally:
        database.dispose()
    assert checksum(server["admin_url"]) == before
    assert list(folder.iterdir()) == []


@pytest.mark.postgres
@pytest.mark.parametrize("login", ["ro_url", "admin_url"])
def test_postgres_connection_alone_refuses_writes(
    pg_chinook: dict[str, Any], login: str, server_writable_dir: Path
) -> None:
    _prove_refusals(
        pg_chinook, login, PG_ATTEMPTS, PG_FILE_ATTEMPTS, checksum_postgres, server_writable_dir
    )


@pytest.mark.mariadb
@pytest.mark.parametrize("login", ["ro_url", "admin_url"])
def test_mariadb_connection_alone_refuses_writes(
    maria_chinook: dict[str, Any], login: str, server_writable_dir: Path
) -> None:
    _prove_refusals(
        maria_chinook,
        login,
        MARIA_ATTEMPTS,
        MARIA_ADMIN_ONLY,
        checksum_mariadb,
        server_writable_dir,
    )


@pytest.mark.postgres
def test_postgres_million_rows_capped_with_bounded_memory(pg: Database) -> None:
    import tracemalloc

    tracemalloc.start()
    result = run_sql(
        pg, "SELECT x, x * 2 AS y FROM generate_series(1, 1000000) AS g(x)", max_rows=1000
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.row_count == 1000 and result.truncated and result.rows[-1] == [1000, 2000]
    assert peak < 20 * 1024 * 1024


@pytest.fixture()
def pg_two_schemas(pg_chinook: dict[str, Any]) -> Iterator[str]:
    """A scratch database with tables in `public` and `sales` (created by the admin login)."""
    admin = sa.create_engine(
        pg_chinook["admin_url"].rsplit("/", 1)[0] + "/test",
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
    )
    name = "sqlsage_schemas"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = pg_chinook["admin_url"].rsplit("/", 1)[0] + f"/{name}"
    scratch = sa.create_engine(url, poolclass=sa.NullPool)
    with scratch.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA sales")
        conn.exec_driver_sql("CREATE TABLE public.notes (id int PRIMARY KEY, body text)")
        conn.exec_driver_sql(
            "CREATE TABLE sales.deals (id int PRIMARY KEY, amount numeric, "
            "note_id int REFERENCES public.notes(id))"
        )
        conn.exec_driver_sql("COMMENT ON TABLE sales.deals IS 'Closed deals'")
        conn.exec_driver_sql("COMMENT ON COLUMN sales.deals.amount IS 'USD'")
        conn.exec_driver_sql("INSERT INTO public.notes VALUES (1, 'hello')")
        conn.exec_driver_sql('CREATE TABLE public."CamelCase" ("Id" int, "Label" text)')
        conn.exec_driver_sql("""INSERT INTO public."CamelCase" VALUES (7, 'seven')""")
        conn.exec_driver_sql("INSERT INTO sales.deals VALUES (1, 10.5, 1), (2, 20, 1)")
    scratch.dispose()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.mark.postgres
def test_postgres_schemas_setting_and_comments(pg_two_schemas: str) -> None:
    only_public = _db(pg_two_schemas)
    both = _db(pg_two_schemas, schemas=("public", "sales"))
    try:
        assert only_public.catalog.table_names() == ["CamelCase", "notes"]
        assert both.catalog.table_names() == ["CamelCase", "notes", "sales.deals"]
        # Unquoted names fold to lowercase in PostgreSQL; the validator spells them as stored.
        camel = run_sql(both, "SELECT id, camelcase.label FROM CamelCase WHERE Id = 7")
        assert camel.rows == [[7, "seven"]]
        assert 'FROM "CamelCase"' in camel.sql and '"Id"' in camel.sql
        star = run_sql(both, "SELECT camelcase.* FROM camelcase")
        assert star.rows == [[7, "seven"]] and [c.name for c in star.columns] == ["Id", "Label"]
        page = schema_lookup(both, tables=["sales.deals"])
        deals = page.tables[0]
        assert deals.comment == "Closed deals" and deals.column("amount").comment == "USD"  # type: ignore[union-attr]
        assert deals.foreign_keys[0].ref_table == "notes"
        result = run_sql(
            both,
            "SELECT SUM(d.amount) AS total FROM sales.deals d JOIN notes n ON n.id = d.note_id",
        )
        assert result.rows == [[30.5]]
        # An unqualified name found in exactly one exposed schema gets its schema written in.
        unqualified = run_sql(both, "SELECT COUNT(*) FROM deals")
        assert unqualified.rows == [[2]] and "FROM sales.deals" in unqualified.sql
        with pytest.raises(SqlsageError) as info:
            run_sql(only_public, "SELECT * FROM sales.deals")
        assert info.value.code == "unknown_table"
    finally:
        only_public.dispose()
        both.dispose()


@pytest.mark.mariadb
def test_mariadb_cancel_stops_the_query_on_the_server(
    maria: Database, maria_chinook: dict[str, Any]
) -> None:
    import threading

    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(SqlsageError) as info:
        run_sql(
            maria,
            "SELECT COUNT(*) FROM Track a, Track b, Track mcancelled",
            timeout_s=60,
            cancel=cancel,
        )
    assert info.value.code == "cancelled" and time.monotonic() - started < 5
    time.sleep(0.2)
    assert _maria_running(maria_chinook["admin_url"], "mcancelled") == 0
    assert run_sql(maria, "SELECT COUNT(*) FROM Genre").rows == [[25]]
