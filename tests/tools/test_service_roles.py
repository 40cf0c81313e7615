"""The sqlsage_ro accounts of service_dbs really are read-only, on both servers."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from service_dbs import checksum_mariadb, checksum_postgres

PG_INSUFFICIENT_PRIVILEGE = "42501"
MARIADB_NEEDS_FILE_PRIVILEGE = 1227  # ER_SPECIFIC_ACCESS_DENIED_ERROR
MARIADB_DB_ACCESS_DENIED = 1044  # ER_DBACCESS_DENIED_ERROR
MARIADB_TABLE_ACCESS_DENIED = 1142  # ER_TABLEACCESS_DENIED_ERROR

# playlist_track is referenced by nothing, so a refusal can only come from privileges, never FKs.
PG_WRITES = {
    "insert": "INSERT INTO genre (genre_id, name) VALUES (9999, 'Scratch')",
    "update": "UPDATE genre SET name = 'Scratch' WHERE genre_id = 1",
    "delete": "DELETE FROM playlist_track WHERE playlist_id = 1",
    "create_table": "CREATE TABLE sqlsage_scratch (id int)",
    "create_temp_table": "CREATE TEMP TABLE sqlsage_scratch (id int)",
    "drop_table": "DROP TABLE playlist_track",
    "truncate": "TRUNCATE playlist_track",
}
MARIADB_WRITES = {
    "insert": "INSERT INTO Genre (GenreId, Name) VALUES (9999, 'Scratch')",
    "update": "UPDATE Genre SET Name = 'Scratch' WHERE GenreId = 1",
    "delete": "DELETE FROM PlaylistTrack WHERE PlaylistId = 1",
    "create_table": "CREATE TABLE sqlsage_scratch (id int)",
    "drop_table": "DROP TABLE PlaylistTrack",
    "truncate": "TRUNCATE TABLE PlaylistTrack",
}


def run(url: str, statement: str) -> list[Any]:
    """Run one statement on a fresh connection and return its rows (empty if it returns none)."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql(statement)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def refusal(url: str, statement: str) -> Any:
    """The driver error raised by a statement that must fail."""
    with pytest.raises(sa.exc.DBAPIError) as caught:
        run(url, statement)
    return caught.value.orig


@pytest.mark.postgres
def test_pg_role_can_read(pg_chinook: dict[str, Any]) -> None:
    assert run(pg_chinook["ro_url"], "SELECT count(*) FROM track") == [(3503,)]


@pytest.mark.postgres
def test_pg_role_has_no_attributes_or_memberships(pg_chinook: dict[str, Any]) -> None:
    rows = run(
        pg_chinook["admin_url"],
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls,"
        " (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)"
        " FROM pg_roles r WHERE rolname = 'sqlsage_ro'",
    )
    assert rows == [(False, False, False, False, False, 0)]


@pytest.mark.postgres
@pytest.mark.parametrize("statement", PG_WRITES.values(), ids=PG_WRITES.keys())
def test_pg_role_refuses_writes(pg_chinook: dict[str, Any], statement: str) -> None:
    before = checksum_postgres(pg_chinook["admin_url"])
    error = refusal(pg_chinook["ro_url"], statement)
    assert error.sqlstate == PG_INSUFFICIENT_PRIVILEGE, error
    assert checksum_postgres(pg_chinook["admin_url"]) == before


@pytest.mark.postgres
def test_pg_role_cannot_copy_to_a_server_file(
    pg_chinook: dict[str, Any], server_writable_dir: Path
) -> None:
    # Control: the superuser's COPY lands in this folder, so an absent file below means refusal.
    control = server_writable_dir / "admin.txt"
    run(pg_chinook["admin_url"], f"COPY (SELECT 1) TO '{control}'")
    assert control.read_text() == "1\n"

    target = server_writable_dir / f"ro-{uuid.uuid4().hex}.txt"
    before = checksum_postgres(pg_chinook["admin_url"])
    error = refusal(pg_chinook["ro_url"], f"COPY (SELECT 1) TO '{target}'")
    assert error.sqlstate == PG_INSUFFICIENT_PRIVILEGE, error
    assert not target.exists()
    assert checksum_postgres(pg_chinook["admin_url"]) == before


@pytest.mark.mariadb
def test_mariadb_user_can_read(maria_chinook: dict[str, Any]) -> None:
    assert run(maria_chinook["ro_url"], "SELECT count(*) FROM Track") == [(3503,)]


@pytest.mark.mariadb
def test_mariadb_user_holds_only_select(maria_chinook: dict[str, Any]) -> None:
    grants = sorted(row[0].split(" TO ")[0] for row in run(maria_chinook["ro_url"], "SHOW GRANTS"))
    assert grants == ["GRANT SELECT ON `sqlsage_chinook`.*", "GRANT USAGE ON *.*"]


@pytest.mark.mariadb
@pytest.mark.parametrize(
    "statement",
    [*MARIADB_WRITES.values(), "CREATE DATABASE sqlsage_scratch"],
    ids=[*MARIADB_WRITES.keys(), "create_database"],
)
def test_mariadb_user_refuses_writes(maria_chinook: dict[str, Any], statement: str) -> None:
    before = checksum_mariadb(maria_chinook["admin_url"])
    error = refusal(maria_chinook["ro_url"], statement)
    assert error.args[0] in {MARIADB_TABLE_ACCESS_DENIED, MARIADB_DB_ACCESS_DENIED}, error
    assert checksum_mariadb(maria_chinook["admin_url"]) == before


@pytest.mark.mariadb
def test_mariadb_user_cannot_select_into_outfile(
    maria_chinook: dict[str, Any], server_writable_dir: Path
) -> None:
    # Control: root (FILE privilege, secure_file_priv unset here) writes into this folder.
    control = server_writable_dir / "admin.txt"
    run(maria_chinook["admin_url"], f"SELECT 1 INTO OUTFILE '{control}'")
    assert control.read_text() == "1\n"

    target = server_writable_dir / f"ro-{uuid.uuid4().hex}.txt"
    before = checksum_mariadb(maria_chinook["admin_url"])
    error = refusal(maria_chinook["ro_url"], f"SELECT 1 INTO OUTFILE '{target}'")
    assert error.args[0] == MARIADB_NEEDS_FILE_PRIVILEGE, error
    assert not target.exists()
    assert checksum_mariadb(maria_chinook["admin_url"]) == before
