"""The server's own tables in the session database: a record of each turn (history, traces,
budgets), feedback, the audit log, the event replay buffer and per-session turn leases.

They live beside the session catalog (same engine, same database), so a server replica that
shares the PostgreSQL session database shares all of them.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

turns_table = sa.Table(
    "sqlsage_turns",
    metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("turn", sa.Integer, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("db", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("sql_text", sa.Text),
    sa.Column("result_ref", sa.Text),
    sa.Column("table_json", sa.Text),  # columns, row_count, truncated, elapsed_ms, cached
    sa.Column("chart_json", sa.Text),
    sa.Column("error_json", sa.Text),
    sa.Column("steps_json", sa.Text, nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=False),
    sa.Column("elapsed_ms", sa.Float, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_sqlsage_turns_owner_created", "owner", "created_at"),
)

feedback_table = sa.Table(
    "sqlsage_feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(64), nullable=False),
    sa.Column("turn", sa.Integer, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("rating", sa.String(8), nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("example_saved", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

audit_table = sa.Table(
    "sqlsage_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("session_id", sa.String(64)),
    sa.Column("turn", sa.Integer),
    sa.Column("db", sa.Text, nullable=False),
    sa.Column("sql_text", sa.Text, nullable=False),
    sa.Column("row_count", sa.Integer),
    sa.Column("elapsed_ms", sa.Float),
    sa.Column("outcome", sa.String(40), nullable=False),  # ok, cached, or an error code
    sa.Column("source", sa.String(16), nullable=False),  # turn, export
    sa.Index("ix_sqlsage_audit_at", "at"),
)

events_table = sa.Table(
    "sqlsage_events",
    metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("turn", sa.Integer, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # the event's flat JSON
    sa.Column("expires_at", sa.Float, nullable=False),  # epoch seconds
    sa.Index("ix_sqlsage_events_expires", "expires_at"),
)

leases_table = sa.Table(
    "sqlsage_turn_leases",
    metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
