"""The exposed schema of one database: reflection, exposure rules, comments, lazy caching.

Only what the configuration exposes exists here: excluded tables and columns are invisible to
schema lookup, search and validation alike.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from tools.errors import INVALID_CONFIG, SqlsageError
from tools.schema_models import ColumnInfo, ForeignKey, TableInfo

if TYPE_CHECKING:
    from tools.databases import Database

SAMPLE_VALUES = 5
LOW_CARDINALITY = 30  # a text column with at most this many distinct values gets samples
_STATS_TIMEOUT_S = 2.0


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


class SchemaCatalog:
    """Exposed tables of one database, reflected table by table on demand and cached."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.config = database.config
        self._names: list[str] | None = None
        self._by_lower: dict[str, str] = {}
        self._tables: dict[str, TableInfo] = {}
        self._kinds: dict[str, str] = {}
        self._comments = self._load_comments()
        self._lock = threading.RLock()
        # Validation outcomes against this schema, by (sql, max_rows, from_dialect):
        # tools/validate_sql.py's validate_for reads and fills it; refresh() empties it.
        self.validated: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        # Verdicts shared by statements that differ only in literal values, by (shape, cap):
        # tools/sql_templates.py; refresh() empties it too.
        self.shapes: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    # ---- names -------------------------------------------------------------------------
    def table_names(self) -> list[str]:
        """Every exposed table and view, as `table` or `schema.table` outside the default."""
        with self._lock:
            if self._names is None:
                self._names = self._reflect_names()
                self._by_lower = {n.lower(): n for n in self._names}
            return list(self._names)

    def resolve(self, name: str, schema: str | None = None) -> str | None:
        """The exposed table name a (possibly differently cased) reference means, or None."""
        self.table_names()
        key = f"{schema}.{name}" if schema else name
        found = self._by_lower.get(key.lower())
        if found is None and schema and schema.lower() == (self._default_schema() or "").lower():
            found = self._by_lower.get(name.lower())
        if found is None and schema is None:
            # An unqualified name that exists in exactly one exposed schema means that table.
            suffix = "." + name.lower()
            matches = [n for low, n in self._by_lower.items() if low.endswith(suffix)]
            found = matches[0] if len(matches) == 1 else None
        return found

    def table(self, name: str) -> TableInfo | None:
        """Reflected details of an exposed table (None when it is not exposed)."""
        resolved = self.resolve(name)
        if resolved is None:
            return None
        with self._lock:
            if resolved not in self._tables:
                self._tables[resolved] = self._reflect_table(resolved)
            return self._tables[resolved]

    def refresh(self) -> None:
        """Forget everything reflected (after a schema change)."""
        with self._lock:
            self._names = None
            self._tables.clear()
            self._comments = self._load_comments()
            self.validated.clear()
            self.shapes.clear()

    # ---- reflection --------------------------------------------------------------------
    def _default_schema(self) -> str | None:
        return {"postgresql": "public"}.get(self.database.driver.kind)

    def _schemas(self) -> list[str | None]:
        return list(self.config.schemas) if self.config.schemas else [None]

    def _exposed(self, name: str) -> bool:
        cfg = self.config
        if cfg.include_tables is not None and not _matches(name, cfg.include_tables):
            return False
        return not _matches(name, cfg.exclude_tables)

    def _reflect_names(self) -> list[str]:
        names: list[str] = []
        try:
            with self.database.engine.connect() as conn:
                inspector = inspect(conn)
                default = inspector.default_schema_name
                for schema in self._schemas():
                    prefix = "" if schema in (None, default) else f"{schema}."
                    for kind, found in (
                        ("table", inspector.get_table_names(schema=schema)),
                        ("view", inspector.get_view_names(schema=schema)),
                    ):
                        for table in sorted(found):
                            qualified = prefix + table
                            if self._exposed(qualified) and not table.startswith("sqlite_"):
                                names.append(qualified)
                                self._kinds[qualified] = kind
        except SqlsageError:
            raise
        except SQLAlchemyError as exc:
            raise self.database.unreachable(exc) from None
        return names

    def _reflect_table(self, qualified: str) -> TableInfo:
        schema, _, table = qualified.rpartition(".")
        schema_arg = schema or None
        try:
            with self.database.engine.connect() as conn:
                inspector = inspect(conn)
                raw_columns = inspector.get_columns(table, schema=schema_arg)
                pk = inspector.get_pk_constraint(table, schema=schema_arg) or {}
                fks = inspector.get_foreign_keys(table, schema=schema_arg)
                table_comment: dict[str, Any] = {}
                with contextlib.suppress(NotImplementedError):
                    table_comment = dict(inspector.get_table_comment(table, schema=schema_arg))
        except SQLAlchemyError as exc:
            raise self.database.failure(exc) from None
        side = self._comments.get(qualified.lower(), {})
        side_columns = {k.lower(): v for k, v in side.get("columns", {}).items()}
        pk_columns = list(pk.get("constrained_columns") or [])
        columns: list[ColumnInfo] = []
        hidden = 0
        for col in raw_columns:
            if _matches(f"{qualified}.{col['name']}", self.config.exclude_columns) or _matches(
                f"{table}.{col['name']}", self.config.exclude_columns
            ):
                hidden += 1
                continue
            columns.append(
                ColumnInfo(
                    name=col["name"],
                    type=_type_name(col["type"]),
                    nullable=bool(col.get("nullable", True)),
                    default=None if col.get("default") is None else str(col["default"]),
                    comment=side_columns.get(col["name"].lower()) or col.get("comment") or None,
                    primary_key=col["name"] in pk_columns,
                )
            )
        visible = {c.name for c in columns}
        foreign_keys = []
        for fk in fks:
            ref = fk["referred_table"]
            if fk.get("referred_schema") and fk["referred_schema"] != self._default_schema():
                ref = f"{fk['referred_schema']}.{ref}"
            if self.resolve(ref) is None or not set(fk["constrained_columns"]) <= visible:
                continue  # a key into something hidden stays hidden
            foreign_keys.append(
                ForeignKey(
                    columns=list(fk["constrained_columns"]),
                    ref_table=self.resolve(ref) or ref,
                    ref_columns=list(fk["referred_columns"]),
                )
            )
        return TableInfo(
            name=qualified,
            schema_name=schema_arg,
            kind=self._kinds.get(qualified, "table"),
            comment=side.get("comment") or (table_comment or {}).get("text") or None,
            columns=columns,
            primary_key=[c for c in pk_columns if c in visible],
            foreign_keys=foreign_keys,
            hidden_columns=hidden,
        )

    # ---- statistics (samples, row estimates) ---------------------------------------------
    def with_stats(self, name: str) -> TableInfo | None:
        """The table with row estimate and sample values of low-cardinality text columns."""
        info = self.table(name)
        if info is None or info.row_estimate is not None:
            return info
        from tools.table_stats import collect_stats

        with self._lock:
            collect_stats(self.database, info, timeout_s=_STATS_TIMEOUT_S)
        return info

    # ---- comments sidecar --------------------------------------------------------------
    def _comments_path(self) -> Path | None:
        if self.config.comments_file:
            return Path(self.config.comments_file)
        if self.database.driver.kind == "sqlite" and self.database.url.database:
            db_path = Path(self.database.url.database)
            return db_path.with_name(db_path.name + ".comments.json")
        return None

    def _load_comments(self) -> dict[str, dict[str, Any]]:
        path = self._comments_path()
        if path is None or not path.is_file():
            if self.config.comments_file:
                raise SqlsageError(
                    INVALID_CONFIG,
                    f"comments_file '{path}' of database '{self.config.name}' does not exist.",
                    hint="Fix the path or remove comments_file from the config.",
                )
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            tables = data["tables"]
            return {str(k).lower(): v for k, v in tables.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SqlsageError(
                INVALID_CONFIG,
                f"Comments file '{path}' is not valid: {exc}.",
                hint='Expected JSON {"tables": {"t": {"comment": "...", "columns": {"c": "..."}}}}.',
            ) from None


def _type_name(sa_type: Any) -> str:
    try:
        return str(sa_type.compile()).upper()
    except Exception:  # exotic types cannot always compile without a dialect
        return type(sa_type).__name__.upper()
