"""What SQL may do: statement types, write-like nodes and denied functions, per dialect."""

from __future__ import annotations

from sqlglot import exp

# The root of an accepted statement.
QUERY_ROOTS: tuple[type[exp.Expr], ...] = (
    exp.Select,
    exp.SetOperation,  # UNION / INTERSECT / EXCEPT
    exp.Values,
    exp.Subquery,
)


def _classes(*names: str) -> tuple[type[exp.Expr], ...]:
    # sqlglot renames classes across versions; a missing one simply is not checked by name.
    return tuple(getattr(exp, n) for n in names if hasattr(exp, n))


# Nodes that write, change state or reach outside the database, at any depth.
WRITE_NODES: tuple[type[exp.Expr], ...] = _classes(
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "Create",
    "Drop",
    "Alter",
    "AlterTable",
    "TruncateTable",
    "Command",
    "Into",
    "Lock",
    "Pragma",
    "Set",
    "Transaction",
    "Commit",
    "Rollback",
    "Copy",
    "Attach",
    "Detach",
    "Use",
    "Grant",
    "Revoke",
    "Analyze",
    "LoadData",
    "Kill",
    "Refresh",
    "Cache",
    "Uncache",
    "Execute",
    "Export",
)

# Leading keywords that mark a write even where sqlglot cannot parse the statement.
WRITE_KEYWORDS = frozenset(
    {
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "UPSERT",
        "REPLACE",
        "CREATE",
        "DROP",
        "ALTER",
        "TRUNCATE",
        "GRANT",
        "REVOKE",
        "ATTACH",
        "DETACH",
        "PRAGMA",
        "VACUUM",
        "REINDEX",
        "ANALYZE",
        "COPY",
        "SET",
        "RESET",
        "DO",
        "CALL",
        "EXEC",
        "EXECUTE",
        "BEGIN",
        "START",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "LOCK",
        "UNLOCK",
        "LOAD",
        "HANDLER",
        "RENAME",
        "COMMENT",
        "CLUSTER",
        "REFRESH",
        "DISCARD",
        "LISTEN",
        "NOTIFY",
        "PREPARE",
        "DEALLOCATE",
        "KILL",
        "FLUSH",
        "INSTALL",
        "UNINSTALL",
        "OPTIMIZE",
        "REPAIR",
        "CHECKPOINT",
        "SECURITY",
        "IMPORT",
        "EXPORT",
        "USE",
        "SHUTDOWN",
        "EXPLAIN",
    }
)

# Functions that read or write files, reach the network, sleep, run other SQL or administer.
DENIED_FUNCTIONS = frozenset(
    {
        # PostgreSQL
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "pg_ls_logdir",
        "pg_ls_waldir",
        "pg_ls_tmpdir",
        "pg_ls_archive_statusdir",
        "lo_import",
        "lo_export",
        "lo_create",
        "lo_unlink",
        "lo_put",
        "lo_from_bytea",
        "lo_open",
        "lo_write",
        "lo_truncate",
        "pg_file_write",
        "pg_file_rename",
        "pg_file_unlink",
        "pg_logdir_ls",
        "dblink",
        "dblink_exec",
        "dblink_connect",
        "dblink_connect_u",
        "dblink_send_query",
        "dblink_open",
        "dblink_fetch",
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "set_config",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_advisory_lock",
        "pg_advisory_xact_lock",
        "pg_try_advisory_lock",
        "pg_advisory_lock_shared",
        "query_to_xml",
        "query_to_xml_and_xmlschema",
        "query_to_xmlschema",
        "cursor_to_xml",
        "nextval",
        "setval",
        "txid_current",
        "pg_current_xact_id",
        "pg_notify",
        "pg_import_system_collations",
        "pg_log_backend_memory_contexts",
        # MySQL / MariaDB
        "load_file",
        "sleep",
        "benchmark",
        "get_lock",
        "release_lock",
        "release_all_locks",
        "master_pos_wait",
        "source_pos_wait",
        "sys_exec",
        "sys_eval",
        "sys_get",
        "sys_set",
        # SQLite
        "load_extension",
        "readfile",
        "writefile",
        "edit",
        "fts3_tokenizer",
        "zipfile",
        # DuckDB and friends
        "read_csv",
        "read_csv_auto",
        "read_parquet",
        "read_json",
        "read_json_auto",
        "read_text",
        "read_blob",
        "read_ndjson",
        "read_ndjson_auto",
        "parquet_scan",
        "glob",
        "sniff_csv",
        "httpfs",
        "install",
        "load",
        # SQL Server
        "xp_cmdshell",
        "openrowset",
        "opendatasource",
        "openquery",
        "openxml",
        "xp_dirtree",
        "xp_fileexist",
        "sp_executesql",
        # Oracle
        "utl_file",
        "utl_http",
        "utl_tcp",
        "dbms_lock",
        "dbms_pipe",
    }
)
DENIED_PREFIXES = ("pg_read_", "pg_ls_", "lo_", "dblink", "pg_sleep", "xp_", "utl_")

# Columns every SQLite rowid table has without declaring them.
SQLITE_IMPLICIT_COLUMNS = frozenset({"rowid", "oid", "_rowid_"})


def function_name(node: exp.Func) -> str:
    """A function call's name as written (Anonymous) or as sqlglot knows it."""
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    return node.sql_name()


def is_denied(name: str) -> bool:
    """Whether a function name is on the deny list."""
    lowered = name.lower().split(".")[-1]
    return lowered in DENIED_FUNCTIONS or lowered.startswith(DENIED_PREFIXES)
