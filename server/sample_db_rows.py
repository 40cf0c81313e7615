"""Row generation for the bundled `sample` database: seeded, so every run yields the same rows."""

from __future__ import annotations

import bisect
import itertools
import random
import unicodedata
from collections.abc import Sequence
from datetime import date, timedelta
from typing import NamedTuple

from server.sample_db_data import (
    CATALOG,
    COMPANY_KINDS,
    COMPANY_PREFIXES,
    FIRST_NAMES,
    LAST_NAMES,
    REGIONS,
    REPS_PER_REGION,
    SMALL_BUSINESS_TRADES,
)

N_CUSTOMERS = 1500
N_ORDERS = 12_000
FIRST_DAY = date(2022, 1, 1)
# The data is a snapshot taken at the end of 2024: later events (shipping, returns) are unknown.
AS_OF = date(2024, 12, 31)

Row = tuple[object, ...]


class Employee(NamedTuple):
    employee_id: int
    first_name: str
    last_name: str
    title: str
    manager_id: int | None
    region_id: int | None
    hire_date: str
    email: str


class Customer(NamedTuple):
    customer_id: int
    name: str
    segment: str
    country: str
    city: str
    region_id: int
    signup_date: str
    email: str


class Product(NamedTuple):
    product_id: int
    name: str
    category_id: int
    unit_price: float
    unit_cost: float
    launched_on: str
    discontinued: int


def sample_rows(seed: int) -> list[tuple[str, Sequence[Row]]]:
    """Return (table, rows) for every table of the sample database, parents before children."""
    rng = random.Random(seed)
    regions = _regions()
    employees = _employees(rng, regions)
    customers = _customers(rng, regions)
    categories, products = _catalog(rng)
    orders, items, returns = _orders(rng, employees, customers, products)
    return [
        ("regions", regions),
        ("employees", employees),
        ("customers", customers),
        ("categories", categories),
        ("products", products),
        ("orders", orders),
        ("order_items", items),
        ("returns", returns),
    ]


def _regions() -> list[tuple[int, str]]:
    return list(enumerate(REGIONS, start=1))


def _employees(rng: random.Random, regions: list[tuple[int, str]]) -> list[Employee]:
    people = iter(rng.sample([(f, la) for f in FIRST_NAMES for la in LAST_NAMES], 40))
    rows: list[Employee] = []

    def hire(manager: int | None, region: int | None, title: str, hired: date) -> Employee:
        first, last = next(people)
        email = f"{_slug(first)}.{_slug(last)}@sqlsage-sample.example"
        rows.append(
            Employee(len(rows) + 1, first, last, title, manager, region, hired.isoformat(), email)
        )
        return rows[-1]

    vp = hire(None, None, "VP of Sales", date(2012, 3, 1))
    for region_id, name in regions:
        hired = _day_between(rng, date(2013, 1, 1), date(2017, 12, 31))
        manager = hire(vp.employee_id, region_id, "Regional Sales Manager", hired)
        for _ in range(REPS_PER_REGION[name]):
            hired = _day_between(rng, date(2015, 1, 1), date(2021, 12, 31))
            title = "Senior Sales Representative" if hired.year < 2018 else "Sales Representative"
            hire(manager.employee_id, region_id, title, hired)
    return rows


def _customers(rng: random.Random, regions: list[tuple[int, str]]) -> list[Customer]:
    region_ids = {name: rid for rid, name in regions}
    countries = [(c, region_ids[r]) for r, cs in REGIONS.items() for c in cs]
    weights = [country[1] for country, _ in countries]
    taken: set[str] = set()
    drafts = []
    for _ in range(N_CUSTOMERS):
        (country, _, legal, cities), region_id = rng.choices(countries, weights)[0]
        city = rng.choices(cities, [len(cities) - i for i in range(len(cities))])[0]
        segment = rng.choices(("Consumer", "Corporate", "Small Business"), (55, 25, 20))[0]
        while True:  # names and emails are unique, so draw again on a clash
            name, email = _customer_name(rng, segment, legal)
            if name not in taken and email not in taken:
                break
        taken.update((name, email))
        # Most accounts predate the order history; the rest sign up steadily through it.
        if rng.random() < 0.55:
            signup = _day_between(rng, date(2019, 1, 1), date(2021, 12, 31))
        else:
            signup = _day_between(rng, FIRST_DAY, date(2024, 11, 30))
        drafts.append((signup.isoformat(), name, segment, country, city, region_id, email))
    drafts.sort()
    return [
        Customer(i, name, segment, country, city, region_id, signup, email)
        for i, (signup, name, segment, country, city, region_id, email) in enumerate(
            drafts, start=1
        )
    ]


def _customer_name(rng: random.Random, segment: str, legal: str) -> tuple[str, str]:
    if segment == "Consumer":
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        return f"{first} {last}", f"{_slug(first)}.{_slug(last)}@example.com"
    if segment == "Corporate":
        base = f"{rng.choice(COMPANY_PREFIXES)} {rng.choice(COMPANY_KINDS)}"
        return f"{base} {legal}", f"purchasing@{_slug(base)}.example"
    base = f"{rng.choice(LAST_NAMES)}'s {rng.choice(SMALL_BUSINESS_TRADES)}"
    return base, f"hello@{_slug(base)}.example"


def _catalog(rng: random.Random) -> tuple[list[Row], list[Product]]:
    categories: list[Row] = []
    products: list[Product] = []
    for category_id, (category, (description, listing)) in enumerate(CATALOG.items(), start=1):
        categories.append((category_id, category, description))
        for entry in listing.split("; "):
            name, price = entry.rsplit(" ", 1)
            cost = round(float(price) * rng.uniform(0.45, 0.7), 2)
            # A quarter of the range launched during the order history, the rest before it.
            if rng.random() < 0.75:
                launched = _day_between(rng, date(2016, 1, 1), date(2021, 12, 31))
            else:
                launched = _day_between(rng, FIRST_DAY, date(2024, 9, 30))
            discontinued = int(launched.year < 2023 and rng.random() < 0.1)
            products.append(
                Product(
                    len(products) + 1,
                    name,
                    category_id,
                    float(price),
                    cost,
                    launched.isoformat(),
                    discontinued,
                )
            )
    return categories, products


def _orders(
    rng: random.Random,
    employees: list[Employee],
    customers: list[Customer],
    products: list[Product],
) -> tuple[list[Row], list[Row], list[Row]]:
    reps: dict[int | None, list[int]] = {}
    managers: dict[int | None, int] = {}
    for e in employees:
        if e.title == "Regional Sales Manager":
            managers[e.region_id] = e.employee_id
        elif e.manager_id is not None:
            reps.setdefault(e.region_id, []).append(e.employee_id)
    account_rep = [rng.choice(reps[c.region_id]) for c in customers]
    # Pareto weights make a few customers, mostly companies, order far more than the rest.
    signups = [c.signup_date for c in customers]
    segment_rate = {"Consumer": 0.6, "Small Business": 1.5, "Corporate": 3.0}
    customer_cum = list(
        itertools.accumulate(
            segment_rate[c.segment] * min(rng.paretovariate(1.3), 40.0) for c in customers
        )
    )

    by_launch = sorted(products, key=lambda p: (p.launched_on, p.product_id))
    launches = [p.launched_on for p in by_launch]
    # A long tail of products, with cheap ones selling more often than expensive ones.
    product_cum = list(
        itertools.accumulate(
            min(rng.paretovariate(1.5), 20.0) * (50 / (p.unit_price + 50)) ** 0.7 for p in by_launch
        )
    )

    orders: list[Row] = []
    items: list[Row] = []
    returns: list[Row] = []
    for order_id, day in enumerate(_order_days(rng), start=1):
        iso = day.isoformat()
        c = _weighted_prefix(rng, customer_cum, bisect.bisect_right(signups, iso))
        region = customers[c].region_id
        roll = rng.random()
        if roll < 0.8:
            employee = account_rep[c]
        elif roll < 0.95:
            employee = rng.choice(reps[region])
        else:
            employee = managers[region]
        online = 0.45 + 0.06 * (day.year - 2022)  # online grows at the expense of retail
        channel = rng.choices(("online", "retail", "partner"), (online, 0.85 - online, 0.15))[0]
        status, shipped, delivered = _fulfilment(rng, day)
        orders.append((order_id, customers[c].customer_id, employee, iso, shipped, status, channel))

        n_lines = rng.choices((1, 2, 3, 4, 5), (45, 25, 15, 10, 5))[0]
        on_sale = by_launch[: bisect.bisect_right(launches, iso)]
        chosen = _pick_products(rng, on_sale, product_cum, n_lines)
        discounts = (70, 12, 9, 5, 4) if channel != "partner" else (40, 20, 20, 12, 8)
        for line_no, product in enumerate(chosen, start=1):
            quantity = rng.choices((1, 2, 3, 4, 5, 6, 8, 10), (50, 20, 10, 6, 5, 3, 3, 3))[0]
            # List prices rise about 3% each January; the stored price is the 2024 one.
            price = round(product.unit_price * (1 - 0.03 * (2024 - day.year)), 2)
            discount = rng.choices((0.0, 0.05, 0.1, 0.15, 0.2), discounts)[0]
            items.append((order_id, line_no, product.product_id, quantity, price, discount))
            if delivered is not None and rng.random() < 0.035:
                returned = delivered + timedelta(days=rng.randint(2, 30))
                if returned <= AS_OF:
                    reason = _return_reason(rng, delivered - day)
                    back = rng.randint(1, quantity)
                    returns.append(
                        (
                            len(returns) + 1,
                            order_id,
                            product.product_id,
                            returned.isoformat(),
                            back,
                            reason,
                        )
                    )
    return orders, items, returns


def _pick_products(
    rng: random.Random, on_sale: list[Product], cum: Sequence[float], n: int
) -> list[Product]:
    chosen: list[Product] = []
    for _ in range(n * 4):  # a few redraws so that no product repeats within one order
        product = on_sale[_weighted_prefix(rng, cum, len(on_sale))]
        if product not in chosen:
            chosen.append(product)
            if len(chosen) == n:
                break
    return chosen


def _order_days(rng: random.Random) -> list[date]:
    # Growth year over year, a holiday peak in November and December, quieter weekends.
    growth = {2022: 1.0, 2023: 1.25, 2024: 1.5}
    season = (0.8, 0.75, 0.9, 0.9, 0.95, 0.95, 0.9, 0.95, 1.0, 1.05, 1.5, 1.8)
    days = [FIRST_DAY + timedelta(days=i) for i in range((AS_OF - FIRST_DAY).days + 1)]
    weights = [
        growth[d.year] * season[d.month - 1] * (0.8 if d.weekday() >= 5 else 1.0) for d in days
    ]
    return sorted(rng.choices(days, weights, k=N_ORDERS))


def _fulfilment(rng: random.Random, day: date) -> tuple[str, str | None, date | None]:
    """Return (status, ship date, delivery date) of an order placed on `day`, seen at AS_OF."""
    if rng.random() < 0.04:
        return "cancelled", None, None
    shipped = day + timedelta(days=rng.choices((0, 1, 2, 3, 4), (10, 40, 30, 15, 5))[0])
    if shipped > AS_OF:
        return "pending", None, None
    delivered = shipped + timedelta(days=rng.randint(1, 7))
    if delivered > AS_OF:
        return "shipped", shipped.isoformat(), None
    return "delivered", shipped.isoformat(), delivered


def _return_reason(rng: random.Random, lead_time: timedelta) -> str:
    late = 30 if lead_time.days >= 8 else 3
    reasons = ("damaged", "wrong item", "not as described", "changed mind", "late delivery")
    return rng.choices(reasons, (30, 15, 20, 25, late))[0]


def _weighted_prefix(rng: random.Random, cum: Sequence[float], n: int) -> int:
    """Draw an index below `n` with the weights whose running sums are `cum`."""
    return min(bisect.bisect_right(cum, rng.random() * cum[n - 1], 0, n), n - 1)


def _day_between(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, (last - first).days))


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())
