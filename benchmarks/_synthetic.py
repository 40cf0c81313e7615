"""A large synthetic SQLite schema for indexing benchmarks: many tables, realistic names.

Every table has an INTEGER id, sometimes a foreign key to an earlier table, a few text columns
(a name with distinct values, two low-cardinality ones such as a status), dates, integers and
reals, and a handful of rows. Deterministic: the same arguments give the same file.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


DOMAINS = _words(
    "customer purchase invoice product supplier shipment employee payment account campaign "
    "ticket warehouse store contract vendor asset project task lead subscription refund review "
    "category region branch device policy claim patient visit"
)
QUALIFIERS = _words(
    "line item history event status note detail snapshot audit archive summary daily monthly "
    "tag link log score target budget forecast rate group type map batch queue stage import "
    "export legacy staging backup raw extension"
)
LOW_CARDINALITY = {
    "status": ("active", "pending", "closed", "cancelled"),
    "channel": ("web", "phone", "store", "partner"),
    "currency": ("EUR", "USD", "GBP"),
    "priority_level": ("low", "medium", "high"),
    "region_code": ("EMEA", "APAC", "AMER"),
    "payment_method": ("card", "transfer", "cash"),
    "risk_band": ("A", "B", "C", "D"),
    "source_system": ("erp", "crm", "import"),
}
NAME_COLUMNS = ("name", "title", "label", "display_name", "reference", "contact_email")
INTEGER_COLUMNS = _words(
    "quantity units_in_stock priority version retry_count age_days headcount duration_minutes "
    "line_number fiscal_year page_views seats rank_position"
)
REAL_COLUMNS = _words(
    "amount unit_price discount_pct tax_rate weight_kg score balance cost margin latitude "
    "longitude exchange_rate"
)
DATE_COLUMNS = _words(
    "created_at updated_at due_date start_date end_date shipped_on closed_on valid_from valid_to"
)
WORDS = _words("alpha north river cedar summit harbor maple silver granite orchid falcon")


def table_names(count: int) -> list[str]:
    """`count` distinct table names such as `invoice_line` or `shipment_audit`."""
    names = list(DOMAINS) + [f"{d}_{q}" for d in DOMAINS for q in QUALIFIERS]
    if count > len(names):
        raise ValueError(f"At most {len(names)} synthetic table names, asked for {count}.")
    random.Random(7).shuffle(names)
    return names[:count]


def table_sql(name: str, earlier: list[str], rng: random.Random, columns: int) -> str:
    """CREATE TABLE text for one table of `columns` columns."""
    lines = ["id INTEGER PRIMARY KEY"]
    foreign = rng.choice(earlier) if earlier and rng.random() < 0.5 else None
    if foreign:
        lines.append(f"{foreign}_id INTEGER REFERENCES {foreign}(id)")
    lines.append(f"{rng.choice(NAME_COLUMNS)} TEXT")
    lines += [f"{c} TEXT" for c in rng.sample(sorted(LOW_CARDINALITY), 2)]
    lines += [f"{c} DATE" for c in rng.sample(DATE_COLUMNS, 3)]
    rest = columns - len(lines)
    pool = [(c, "INTEGER") for c in INTEGER_COLUMNS] + [(c, "REAL") for c in REAL_COLUMNS]
    lines += [f"{c} {t}" for c, t in rng.sample(pool, rest)]
    return f"CREATE TABLE {name} (\n  " + ",\n  ".join(lines) + "\n)"


def row_value(column: str, kind: str, row: int, rng: random.Random) -> object:
    """A plausible value for one cell."""
    if column in LOW_CARDINALITY:
        return rng.choice(LOW_CARDINALITY[column])
    if kind == "TEXT":
        return f"{rng.choice(WORDS)} {row}"
    if kind == "DATE":
        return f"202{rng.randint(0, 5)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == "REAL":
        return round(rng.uniform(0, 1000), 2)
    return rng.randint(0, 500)


def create_schema(path: Path, *, tables: int = 1000, columns: int = 20, rows: int = 5) -> list[str]:
    """Write the synthetic database to `path` and return its table names."""
    rng = random.Random(11)
    names = table_names(tables)
    with sqlite3.connect(path) as conn:
        for index, name in enumerate(names):
            conn.execute(table_sql(name, names[:index], rng, columns))
            info = conn.execute(f"PRAGMA table_info({name})").fetchall()
            cells = [(c[1], c[2]) for c in info]
            placeholders = ", ".join("?" for _ in cells)
            data = [
                [row if col == "id" else row_value(col, kind, row, rng) for col, kind in cells]
                for row in range(1, rows + 1)
            ]
            conn.executemany(f"INSERT INTO {name} VALUES ({placeholders})", data)
    return names


def add_column(path: Path, tables: list[str], column: str = "loyalty_tier") -> None:
    """Add one low-cardinality TEXT column to each of `tables`, with values."""
    with sqlite3.connect(path) as conn:
        for name in tables:
            conn.execute(f"ALTER TABLE {name} ADD COLUMN {column} TEXT")
            conn.execute(
                f"UPDATE {name} SET {column} = CASE id % 2 WHEN 0 THEN 'gold' ELSE 'basic' END"
            )
