"""Deterministic generator of the bundled `sample` SQLite database: a small company's sales."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from pathlib import Path

from server.sample_db_data import COMMENTS
from server.sample_db_rows import sample_rows

SAMPLE_VERSION = 1
SEED = 20240607

SCHEMA = """
CREATE TABLE regions (
    region_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE employees (
    employee_id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    title TEXT NOT NULL,
    manager_id INTEGER REFERENCES employees (employee_id),
    region_id INTEGER REFERENCES regions (region_id),
    hire_date TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE
);
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    segment TEXT NOT NULL CHECK (segment IN ('Consumer', 'Corporate', 'Small Business')),
    country TEXT NOT NULL,
    city TEXT NOT NULL,
    region_id INTEGER NOT NULL REFERENCES regions (region_id),
    signup_date TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE
);
CREATE TABLE categories (
    category_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL
);
CREATE TABLE products (
    product_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    category_id INTEGER NOT NULL REFERENCES categories (category_id),
    unit_price REAL NOT NULL,
    unit_cost REAL NOT NULL,
    launched_on TEXT NOT NULL,
    discontinued INTEGER NOT NULL DEFAULT 0 CHECK (discontinued IN (0, 1))
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (customer_id),
    employee_id INTEGER NOT NULL REFERENCES employees (employee_id),
    order_date TEXT NOT NULL,
    ship_date TEXT,
    status TEXT NOT NULL CHECK (status IN ('delivered', 'shipped', 'pending', 'cancelled')),
    channel TEXT NOT NULL CHECK (channel IN ('online', 'retail', 'partner'))
);
CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders (order_id),
    line_no INTEGER NOT NULL,
    product_id INTEGER NOT NULL REFERENCES products (product_id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price REAL NOT NULL,
    discount REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE returns (
    return_id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (order_id),
    product_id INTEGER NOT NULL REFERENCES products (product_id),
    return_date TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    reason TEXT NOT NULL CHECK (reason IN
        ('damaged', 'wrong item', 'not as described', 'changed mind', 'late delivery'))
);
CREATE INDEX ix_employees_manager ON employees (manager_id);
CREATE INDEX ix_customers_region ON customers (region_id);
CREATE INDEX ix_products_category ON products (category_id);
CREATE INDEX ix_orders_customer ON orders (customer_id);
CREATE INDEX ix_orders_employee ON orders (employee_id);
CREATE INDEX ix_orders_date ON orders (order_date);
CREATE INDEX ix_order_items_product ON order_items (product_id);
CREATE INDEX ix_returns_order ON returns (order_id);
CREATE VIEW order_totals AS
SELECT o.order_id, o.order_date, o.customer_id,
       ROUND(SUM(i.quantity * i.unit_price * (1 - i.discount)), 2) AS total
FROM orders AS o JOIN order_items AS i ON i.order_id = o.order_id
GROUP BY o.order_id, o.order_date, o.customer_id;
"""


def comments_path(db_path: Path) -> Path:
    """Return the path of the JSON comments sidecar that belongs to `db_path`."""
    return db_path.with_name(db_path.name + ".comments.json")


def ensure_sample_db(data_dir: Path) -> Path:
    """Return `data_dir/sample.sqlite`, generating it first if missing or of another version."""
    path = data_dir / "sample.sqlite"
    # Two processes may both regenerate; each replaces atomically with identical content.
    if _stored_version(path) != SAMPLE_VERSION or not comments_path(path).exists():
        generate_sample_db(path)
    return path


def generate_sample_db(path: Path) -> Path:
    """Write the sample database and its comments sidecar to `path`, replacing both atomically."""
    # The thread id keeps two threads of one process from building into the same file.
    tmp = path.with_suffix(f".tmp-{os.getpid()}-{threading.get_ident()}")
    sidecar = comments_path(path)
    sidecar_tmp = sidecar.with_name(tmp.name + ".comments.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(tmp)) as conn:
            # No journal: a crash leaves only the temporary file, which nobody reads.
            conn.executescript("PRAGMA journal_mode = OFF; PRAGMA foreign_keys = ON;")
            conn.executescript(SCHEMA)
            with conn:
                for table, rows in sample_rows(SEED):
                    marks = ", ".join("?" * len(rows[0]))
                    conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            conn.execute(f"PRAGMA user_version = {SAMPLE_VERSION}")
        sidecar_tmp.write_text(
            json.dumps(_sidecar(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        # Sidecar first: once the database carries the new version, its comments match it.
        os.replace(sidecar_tmp, sidecar)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        sidecar_tmp.unlink(missing_ok=True)
    return path


def _stored_version(path: Path) -> int | None:
    if not path.exists():
        return None
    try:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError:
        return None  # not a database (e.g. truncated): regenerate


def _sidecar() -> dict[str, object]:
    tables = {
        name: {"comment": comment, "columns": columns}
        for name, (comment, columns) in COMMENTS.items()
    }
    return {"tables": tables}
