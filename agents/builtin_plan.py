"""The builtin model's understanding: an English question -> a query plan over the schema.

A plan is a measure (count, count distinct, sum/avg/min/max of a column, a glossary metric, or
rows), group-by dimensions (columns, row labels of joined tables, time buckets), filters on
values found in the data, a time range, and top/bottom N. Anything it cannot place makes the
plan fail with a reason: the builtin model says so instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agents.builtin_schema import SchemaView, is_date, is_key, is_numeric, singular
from memory.index_documents import humanize

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20,
}  # fmt: skip
BUCKETS = {
    "year": "%Y", "yearly": "%Y", "annual": "%Y", "annually": "%Y",
    "month": "%Y-%m", "monthly": "%Y-%m", "quarter": "Q", "quarterly": "Q",
    "day": "%Y-%m-%d", "daily": "%Y-%m-%d", "week": "%Y-%W", "weekly": "%Y-%W",
}  # fmt: skip
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]  # fmt: skip
AGGREGATES = {
    "average": "avg", "avg": "avg", "mean": "avg", "total": "sum", "sum": "sum",
    "maximum": "max", "max": "max", "highest": "max", "largest": "max", "biggest": "max",
    "most expensive": "max", "minimum": "min", "min": "min", "lowest": "min",
    "smallest": "min", "cheapest": "min", "earliest": "min", "first": "min", "oldest": "min",
    "most recent": "max", "latest": "max", "newest": "max", "last": "max",
}  # fmt: skip
DATE_AGGREGATES = {"earliest", "first", "oldest", "most recent", "latest", "newest", "last"}
_N = r"(\d+|" + "|".join(NUMBER_WORDS) + r")"
_TOP = re.compile(r"\b(?:top|first|best|biggest|largest|highest|most)\s+" + _N + r"\b")
_BOTTOM = re.compile(r"\b(?:bottom|last|worst|least|lowest|fewest|smallest)\s+" + _N + r"\b")
_SUPERLATIVE_DESC = re.compile(r"\b(most|highest|largest|biggest|best|top|greatest|more)\b")
_SUPERLATIVE_ASC = re.compile(r"\b(least|lowest|fewest|smallest|worst|bottom|less)\b")
_COUNT = re.compile(r"\b(how many|number of|count of|count the|count)\b")
_DISTINCT = re.compile(r"\b(different|distinct|unique)\b")
_BY = re.compile(
    r"\b(?:by|per|for each|for every|in each|each|across|broken down by)\s+(?:the\s+)?([a-z][a-z ]*)"
)
_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")
_QUARTER = re.compile(r"\bq([1-4])\s*(?:of\s+)?(19\d\d|20\d\d)\b")
_MONTH_YEAR = re.compile(r"\b(" + "|".join(MONTHS) + r")\s+(?:of\s+)?(19\d\d|20\d\d)\b")
_STOP = {"the", "a", "an", "of", "in", "for", "with", "and", "to", "on", "our", "we", "do",
         "does", "did", "is", "are", "was", "were", "have", "has", "had", "what", "which",
         "how", "many", "much", "all", "each", "per", "by", "there", "any", "from", "that",
         "their", "its", "be", "been", "me", "show", "list", "give", "total", "number"}  # fmt: skip


# English words a question is built with, leaving out those German, Italian, Spanish or French
# questions share ("in", "was", "me", "all", "do"): one of these must be there.
_ENGLISH = {"the", "how", "many", "what", "which", "who", "is", "are", "were", "of", "by",
            "per", "show", "list", "give", "total", "number", "average", "top", "for", "with",
            "each", "count", "did", "does", "have", "has", "and", "name", "when", "where", "sum",
            "most", "least", "our", "we", "there"}  # fmt: skip
_NEGATION = re.compile(r"\b(not|never|without|except|excluding|no longer|neither|nor)\b|n't\b")
_COMPARISON = re.compile(
    r"\b(more|less|fewer|greater|higher|lower|larger|smaller|bigger|older|younger|over|under|"
    r"above|below|exceeds?|exceeding|at least|at most)\s+(than\s+)?(\w+\s+){0,2}?"
    r"(\$?\d|the average|average)"
)
_NUMBER_RANGE = re.compile(r"\bbetween\s+\$?(\d+)\s+and\s+\$?(\d+)")
_OF_PHRASE = re.compile(r"\b(type|kind|category|name|title)s?\s+of\s+(?:the\s+|a\s+)?([a-z]+)")
_AGG_LIST = re.compile(
    r"\b(average|avg|mean|minimum|min|maximum|max|total|sum)"
    r"((?:\s*,\s*(?:and\s+)?|\s+and\s+)(?:average|avg|mean|minimum|min|maximum|max|total|sum))+"
)
_ORDERED = re.compile(
    r"\b(?:ordered|sorted|order|sort|ranked)\s+by\s+(?:their\s+|the\s+)?([a-z ]+?)"
    r"(?:\s+(asc|ascending|desc|descending))?(?:\s+from\b|\s*$|,)"
    r"|\bin\s+(descending|ascending)\s+order\s+of\s+(?:their\s+)?([a-z ]+?)(?:\s*$|,)"
)
_ALTERNATIVE = re.compile(r"\b\w+\s+or\s+\w+")
# Words that say how to ask, not what: planner keywords and common question verbs.
_UNDERSTOOD = (
    set(AGGREGATES) | set(BUCKETS) | set(MONTHS) | set(NUMBER_WORDS) | _ENGLISH
    | {"most", "least", "fewest", "best", "worst", "top", "bottom", "first", "last", "highest",
       "lowest", "much", "chart", "line", "bar", "pie", "scatter", "distinct", "different",
       "unique", "did", "get", "got", "made", "make", "place", "placed", "sell", "sold", "buy",
       "bought", "order", "ordered", "generate", "generated", "bring", "brought", "come",
       "came", "handle", "handled", "happen", "between", "since", "after", "before", "during",
       "year", "years", "quarter", "month", "week", "day", "today", "recent", "ever", "currently",
       "every", "been", "being", "this", "that", "these", "those", "them", "they", "there", "its",
       "their", "your", "you", "can", "could", "would", "please", "tell", "find", "display",
       "return", "returned", "see", "know", "want", "need", "look", "give", "also", "only",
       "instead", "now", "about", "same", "again", "then", "just", "whole", "overall",
       "altogether", "combined", "record", "recorded", "exist", "exists", "kind", "kinds",
       "type", "types", "value", "values", "amount", "amounts", "rank", "ranked", "ranking",
       "sort", "sorted", "descending", "ascending", "together", "including"}
)  # fmt: skip
_AT_LEAST = re.compile(r"\bat (least|most)\b")
_PASSIVE_BY = re.compile(r"\b\w+ed\s+by\s+$")


def singular_text(text: str) -> str:
    """Every word singular, so 'countries' meets 'country' and 'categories' 'category'."""
    return " ".join(singular(w) for w in text.split())


class NoPlan(Exception):
    """The question does not fit a plan; the message says what was missing."""


@dataclass
class Metric:
    """A glossary term with a SQL expression: what it means and what it always implies."""

    term: str
    names: list[str]
    sql: str
    tables: list[str]
    filter: str | None = None


@dataclass
class Measure:
    """What is computed: kind plus its table/column, or a metric's expression."""

    kind: str  # count | count_distinct | sum | avg | min | max | rows | metric
    table: str
    column: str | None = None
    metric: Metric | None = None
    label: str = "value"
    also: list[str] = field(default_factory=list)  # more aggregates of the same column
    columns: list[str] = field(default_factory=list)  # rows: the columns asked for


@dataclass
class Dim:
    """A group-by: a column, a table's row label, or a time bucket of a date column."""

    table: str
    column: str | None = None
    bucket: str | None = None  # strftime format, or "Q"
    label: str = ""


@dataclass
class Filter:
    """table.column op value (value already a SQL literal)."""

    table: str
    column: str
    op: str
    value: str


@dataclass
class Plan:
    """Everything needed to write the SQL and to phrase the answer."""

    measure: Measure
    dims: list[Dim] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    time: tuple[str, str, str, str] | None = None  # table, column, start, end (exclusive)
    time_label: str = ""
    order: str | None = None  # desc | asc
    limit: int | None = None
    chart: str | None = None
    order_column: tuple[str, str] | None = None  # rows sorted by this column (top N rows)


def _number(token: str) -> int:
    return int(token) if token.isdigit() else NUMBER_WORDS[token]


def _mentions(q: str, phrase: str) -> bool:
    return re.search(r"\b" + re.escape(phrase) + r"(s|es)?\b", q) is not None


@dataclass
class Planner:
    """Maps questions onto plans for one database."""

    view: SchemaView
    values: list[tuple[str, str, str]]  # (table, column, value) of low-cardinality text columns
    metrics: list[Metric]
    # The newest value of a date column, looked up the first time "last year" needs it.
    latest_of: Any = None  # (table, column) -> str | None
    latest: dict[tuple[str, str], str | None] = field(default_factory=dict)
    dialect: str = "sqlite"
    vocabulary: set[str] = field(default_factory=set)  # schema and glossary words, singular
    value_vocabulary: set[str] = field(default_factory=set)  # words of indexed values

    # ---- the entry point ----------------------------------------------------------------
    def plan(self, question: str, ranked_tables: list[str]) -> Plan:
        """A plan for the question, using the search's table ranking to break ties."""
        q = " ".join(question.lower().replace("?", " ").replace("'s", "").split())
        q = _OF_PHRASE.sub(lambda m: f"{m.group(2)} {m.group(1)}", q)  # "type of pet": "pet type"
        if not re.search(r"[a-z]", q) or not self._english(q):
            raise NoPlan("I only understand questions in English.")
        chart = next((c for c in ("line", "pie", "bar", "scatter") if f"{c} chart" in q), None)
        order, limit = self._top(q)
        measure = self._measure(q, ranked_tables)
        plan = Plan(measure=measure, order=order, limit=limit, chart=chart)
        plan.dims = self._dims(q, measure, ranked_tables)
        plan.filters = self._filters(q, plan)
        self._time(q, plan)
        if measure.kind in ("max", "min") and not plan.dims and plan.limit and plan.limit > 1:
            # "the 3 most expensive products": rows ordered by the column, not one aggregate
            plan.order_column = (measure.table, measure.column or "")
            plan.order = plan.order or ("desc" if measure.kind == "max" else "asc")
            plan.measure = Measure("rows", measure.table, label=measure.table)
        if plan.limit is not None and plan.order is None:
            plan.order = "desc"
        if plan.dims and plan.order is None and self._superlative(q):
            plan.order, plan.limit = self._superlative(q), 1
        if plan.measure.kind == "rows":
            self._rows(q, plan)
        self._check_understood(q, plan)
        self._check_names(question, plan)
        return plan

    def _check_names(self, question: str, plan: Plan) -> None:
        """A quoted string or a capitalized name in the question that no filter uses ('the city
        of Anthony', 'airport AKO') is a value the index does not know: declining beats
        silently ignoring it."""
        used = {
            singular(w) for f in plan.filters for w in re.findall(r"[a-z0-9]+", f.value.lower())
        }
        quoted = re.findall(r"[\"'‘“]([^\"'’”]{2,})[\"'’”]", question)
        words = re.findall(r"(?<=\s)([A-Z][\w-]+)", question)
        # Schema words, not value words: a value the question names must be used by a filter.
        vocabulary = self._vocabulary() | set(MONTHS) | _ENGLISH | _UNDERSTOOD
        for name in [*quoted, *words]:
            lowered = name.lower()
            if re.fullmatch(r"q[1-4]|h[12]|fy\d{2,4}", lowered):
                continue  # quarters and halves are time, read by _time
            if all(
                singular(w) in used or singular(w) in vocabulary
                for w in re.findall(r"[a-z0-9]+", lowered)
            ):
                continue
            raise NoPlan(f"I do not know the value '{name}' in this database")

    def _rows(self, q: str, plan: Plan) -> None:
        """A listing: the columns the question names (else the row label), and its order."""
        table = plan.measure.table
        info = self.view.tables[table]
        used = {f.column for f in plan.filters if f.table == table}
        found = []
        for column in info.columns:
            if column.name in used:
                continue
            spoken = singular_text(humanize(column.name))
            if m := re.search(r"\b" + re.escape(spoken) + r"\b", singular_text(q)):
                found.append((m.start(), column.name))
        plan.measure.columns = [name for _, name in sorted(found)]
        if m := _ORDERED.search(q):
            phrase = m.group(1) or m.group(4) or ""
            way = (m.group(2) or m.group(3) or "").lower()
            key = self._column(phrase, [table], numeric=False)
            if key is not None:
                tail = q[m.end() :]
                desc = way.startswith("desc") or re.search(r"oldest|highest|largest|most", tail)
                plan.order_column, plan.order = key, "desc" if desc else "asc"
        elif m := re.search(
            r"\bwith\s+(?:the\s+)?(highest|largest|biggest|most|lowest|smallest|least|fewest)"
            r"\s+([a-z ]+)",
            q,
        ):
            key = self._column(m.group(2), [table], numeric=True)
            if key is not None:
                plan.order_column = key
                plan.order = (
                    "asc" if m.group(1) in ("lowest", "smallest", "least", "fewest") else "desc"
                )
                plan.limit = plan.limit or 1

    def _check_understood(self, q: str, plan: Plan) -> None:
        """Decline rather than guess: conditions the planner cannot express (negation, numeric
        comparisons, alternatives), and questions with several words it could place nowhere."""
        flagged = any(f.value in ("0", "1") for f in plan.filters)
        if _NEGATION.search(q) and not flagged:
            raise NoPlan(f"it asks for an exclusion ('{_NEGATION.search(q).group(0)}')")  # type: ignore[union-attr]
        if m := _COMPARISON.search(q):
            raise NoPlan(f"it compares against a number ('{m.group(0).strip()}')")
        if m := _ALTERNATIVE.search(q):
            raise NoPlan(f"it asks for alternatives ('{m.group(0).strip()}')")
        for m in _NUMBER_RANGE.finditer(q):
            if not all(_YEAR.fullmatch(g) for g in m.groups()):
                raise NoPlan(f"it asks for a range of numbers ('{m.group(0)}')")
        if unused := self._unused_columns(q, plan):
            raise NoPlan(f"it mentions {', '.join(unused)}, and I could not tell how to use it")
        known = self._vocabulary() | self._value_words()
        unplaced = [
            w for w in re.findall(r"[a-z]+", q)
            if len(w) > 2 and w not in _STOP and w not in _UNDERSTOOD and singular(w) not in known
            and not any(singular(w).startswith(k) or k.startswith(singular(w)) for k in known if len(k) > 4)
        ]  # fmt: skip
        if len(unplaced) >= 2:
            shown = ", ".join(f"'{w}'" for w in unplaced[:4])
            raise NoPlan(f"I could not place {shown} in the schema")

    def _unused_columns(self, q: str, plan: Plan) -> list[str]:
        """Columns of the plan's tables the question names but the plan does not use."""
        measure = plan.measure
        tables = {measure.table, *(measure.metric.tables if measure.metric else [])}
        tables |= {d.table for d in plan.dims} | {f.table for f in plan.filters}
        used = {(measure.table, measure.column)} | {(measure.table, c) for c in measure.columns}
        used |= {(d.table, d.column) for d in plan.dims} | {
            (f.table, f.column) for f in plan.filters
        }
        if plan.time is not None:
            used.add((plan.time[0], plan.time[1]))
        if plan.order_column is not None:
            used.add(plan.order_column)
        labelled = {d.table for d in plan.dims if d.column is None}
        if measure.kind == "rows" and not measure.columns:
            labelled.add(measure.table)
        text = singular_text(q)
        table_words = {w for t in self.view.tables for w in self.view.words(t)}
        unused = []
        for table in tables:
            info = self.view.tables[table]
            label = self.view.label(table)
            for column in info.columns:
                if (table, column.name) in used or is_key(info, column):
                    continue
                if table in labelled and column.name in (label, "first_name", "last_name"):
                    continue
                spoken = singular_text(humanize(column.name))
                if spoken in table_words or len(spoken) < 3:
                    continue
                if re.search(r"\b" + re.escape(spoken) + r"\b", text):
                    unused.append(f"'{humanize(column.name)}'")
        return unused

    def _value_words(self) -> set[str]:
        if not self.value_vocabulary:
            self.value_vocabulary = {
                singular(w) for _, _, v in self.values for w in re.findall(r"[a-z]+", v.lower())
            }
        return self.value_vocabulary

    def _english(self, q: str) -> bool:
        words = re.findall(r"[a-z]+", q)
        if not words or any(ord(ch) >= 0x250 for ch in q):
            return False
        # An English question has one of these function words, or is terse ("Revenue in 2023")
        # but then speaks the schema's own (English) vocabulary.
        if any(w in _ENGLISH for w in words):
            return True
        return any(singular(w) in self._vocabulary() for w in words if len(w) > 2)

    def _vocabulary(self) -> set[str]:
        if not self.vocabulary:
            words: set[str] = set()
            for table, info in self.view.tables.items():
                words |= set(singular_text(humanize(table)).split())
                for column in info.columns:
                    words |= set(singular_text(humanize(column.name)).split())
            for metric in self.metrics:
                for name in metric.names:
                    words |= set(singular_text(name).split())
            self.vocabulary = words - {"id"}
        return self.vocabulary

    def _superlative(self, q: str) -> str | None:
        if _SUPERLATIVE_DESC.search(q):
            return "desc"
        if _SUPERLATIVE_ASC.search(q):
            return "asc"
        return None

    def _top(self, q: str) -> tuple[str | None, int | None]:
        q = _AT_LEAST.sub(" ", q)
        if m := _TOP.search(q):
            return "desc", _number(m.group(1))
        if m := _BOTTOM.search(q):
            return "asc", _number(m.group(1))
        if m := re.search(
            r"\b(?:which|what|the|show|list)\s+(?:are\s+the\s+)?" + _N + r"\s+([a-z]+)", q
        ):
            rest = q[m.end(1) :]
            order = (
                "asc"
                if _SUPERLATIVE_ASC.search(rest) or re.search(r"\bcheapest\b", rest)
                else "desc"
            )
            return order, _number(m.group(1))
        return None, None

    # ---- what is measured ---------------------------------------------------------------
    def _entity(self, text: str, ranked: list[str]) -> str | None:
        """The table a phrase names ('customers', 'order items'), earliest mention first."""
        found: list[tuple[int, int, str]] = []
        for table in self.view.tables:
            for word in self.view.words(table):
                if m := re.search(r"\b" + re.escape(word) + r"(s|es|ed)?\b", text):
                    found.append((m.start(), m.end(), table))
        if not found:
            return None
        found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
        first = found[0]
        # "product categories": the head noun is the last of adjacent table words
        for start, _end, table in found:
            if start == first[1] + 1:
                return table
        return first[2]

    def _shadowed(self, q: str) -> list[tuple[int, int]]:
        """Spans of values and multi-word column names: a metric word inside them ('sales' in
        'sales channel' or 'Senior Sales Representative') is not that metric."""
        spans = []
        for _, _, value in self.values:
            if " " in value and (m := re.search(r"\b" + re.escape(value.lower()) + r"s?\b", q)):
                spans.append((m.start(), m.end()))
        for info in self.view.tables.values():
            for column in info.columns:
                spoken = humanize(column.name)
                if " " in spoken and (m := re.search(r"\b" + re.escape(spoken) + r"s?\b", q)):
                    spans.append((m.start(), m.end()))
        for word in ("sales channel", "sales rep", "sales representative", "sales manager"):
            if m := re.search(r"\b" + word, q):
                spans.append((m.start(), m.end()))
        return spans

    def _metric(self, q: str) -> Metric | None:
        shadowed = self._shadowed(q)
        found: tuple[int, Metric] | None = None
        for metric in self.metrics:
            for name in metric.names:
                words = [re.escape(w) for w in name.split()]
                pattern = r"\b" + r"\w*(?:\W+\w+){0,2}?\W+".join(words) + r"\w*"
                for m in re.finditer(pattern, q):
                    if any(a <= m.start() and m.end() <= b for a, b in shadowed):
                        continue
                    if found is None or len(name) > found[0]:
                        found = (len(name), metric)
        return found[1] if found else None

    def _column(
        self, text: str, tables: list[str], *, numeric: bool, dates: bool = False
    ) -> tuple[str, str] | None:
        """The (table, column) whose spoken name appears in text; numeric-only when asked."""
        best: tuple[int, int, str, str] | None = None
        text = singular_text(text)
        for rank, table in enumerate(tables):
            info = self.view.tables[table]
            for column in info.columns:
                wanted = is_numeric(column) or (dates and is_date(column))
                if numeric and (not wanted or is_key(info, column)):
                    continue
                spoken = singular_text(humanize(column.name))
                options = {spoken, spoken.replace("unit ", "")}
                if dates:
                    options.add(spoken.replace(" date", ""))
                options |= {spoken.replace("signup", "sign up")}
                for option in options - {""}:
                    m = re.search(r"\b" + re.escape(option) + r"\b", text)
                    if m:
                        key = (-len(option), rank, table, column.name)
                        if best is None or key < best:
                            best = key
        return (best[2], best[3]) if best else None

    def _measure(self, q: str, ranked: list[str]) -> Measure:
        metric = self._metric(q)
        if metric is not None:
            return Measure(
                "metric", metric.tables[0], metric=metric, label=metric.term.replace(" ", "_")
            )
        tables = self._tables_in_play(q, ranked)
        if m := _COUNT.search(q):
            after = q[m.end() :]
            distinct = _DISTINCT.search(after[:20]) is not None
            column = (
                self._column(after.split(" in ")[0], tables, numeric=False) if distinct else None
            )
            if column is not None:
                return Measure("count_distinct", column[0], column[1], label=f"{column[1]}_count")
            entity = self._entity(after, ranked) or (tables[0] if tables else None)
            if entity is None:
                raise NoPlan("I could not tell what to count.")
            return Measure("count", entity, label=f"{singular(entity)}_count")
        if m := re.search(
            r"\b(?:the\s+)?(most|fewest|least|more|fewer)\s+([a-z]+(?:\s+[a-z]+)?)", q
        ):
            entity = self._entity(m.group(2), ranked)
            numeric_col = self._column(m.group(2), tables, numeric=True)
            if entity is not None and numeric_col is None:
                return Measure("count", entity, label=f"{singular(entity)}_count")
            if numeric_col is not None:
                return Measure(
                    "sum", numeric_col[0], numeric_col[1], label=f"total_{numeric_col[1]}"
                )
        named_spans = self._column_spans(q)
        for word, agg in sorted(AGGREGATES.items(), key=lambda kv: -len(kv[0])):
            m = re.search(r"\b" + word + r"\b", q)
            if not m or any(a <= m.start() < b for a, b in named_spans):
                continue  # "last" in "last name" is a column, not "the latest"
            dates = word in DATE_AGGREGATES
            column = self._column(q[m.end() :], tables, numeric=True, dates=dates) or self._column(
                q, tables, numeric=True, dates=dates
            )
            if column is not None:
                measure = Measure(agg, column[0], column[1], label=f"{agg}_{column[1]}")
                if listed := _AGG_LIST.search(q):
                    names = re.findall(r"[a-z]+", listed.group(0))
                    aggs = [AGGREGATES[w] for w in names if w in AGGREGATES]
                    measure.kind, measure.also = aggs[0], aggs[1:]
                    measure.label = f"{aggs[0]}_{column[1]}"
                return measure
        entity = self._entity(q, ranked)  # no measure: a listing of what the question names
        if entity is None:
            raise NoPlan("I could not find which table the question is about.")
        return Measure("rows", entity, label=entity)

    def _column_spans(self, q: str) -> list[tuple[int, int]]:
        """Where multi-word column names ('last name', 'first name') occur in the question."""
        spans = []
        for info in self.view.tables.values():
            for column in info.columns:
                spoken = humanize(column.name)
                if " " in spoken:
                    spans += [
                        (m.start(), m.end()) for m in re.finditer(r"\b" + re.escape(spoken), q)
                    ]
        return spans

    def _tables_in_play(self, q: str, ranked: list[str]) -> list[str]:
        named = [t for t in self.view.tables if any(_mentions(q, w) for w in self.view.words(t))]
        rest = [t for t in ranked if t not in named and t in self.view.tables]
        return named + rest + [t for t in self.view.tables if t not in named and t not in rest]

    # ---- group by ------------------------------------------------------------------------
    def _dims(self, q: str, measure: Measure, ranked: list[str]) -> list[Dim]:
        dims: list[Dim] = []
        phrases = [
            m.group(1) for m in _BY.finditer(q) if not _PASSIVE_BY.search(q[: m.start() + 3])
        ]
        verbs = (
            r"(?:has|have|had|sold|generated|made|brought|got|with|placed|bought|ordered|"
            r"received|returned)"
        )
        for m in re.finditer(
            r"\b(?:which|what)\s+(?:" + _N + r"\s+)?([a-z ]+?)\s+" + verbs + r"\b", q
        ):
            phrases.append(m.group(2))
        if measure.kind != "rows" and (
            top := re.search(
                r"\btop\s+" + _N + r"?\s*([a-z ]+?)(?:\s+(?:by|in|with|for|of)\b|$)", q
            )
        ):
            phrases.append(top.group(2))
        for words in re.findall(r"\b(yearly|annual|monthly|quarterly|weekly|daily)\b", q):
            phrases.append(words)
        for phrase in phrases:
            dim = self._dim(phrase.strip(), measure, ranked)
            if dim is not None and all(
                (d.table, d.column, d.bucket) != (dim.table, dim.column, dim.bucket) for d in dims
            ):
                dims.append(dim)
        return dims

    def _dim(self, phrase: str, measure: Measure, ranked: list[str]) -> Dim | None:
        first = phrase.split()[0] if phrase else ""
        if first in BUCKETS:
            table, column = self._date_column(measure, phrase)
            return Dim(table, column, bucket=BUCKETS[first], label=first.rstrip("ly") or first)
        if self._metric(phrase) is not None or (
            measure.column and humanize(measure.column) in phrase
        ):
            return None  # "by revenue": the ordering, not a grouping
        head = " ".join(phrase.split()[:2])
        tables = self._tables_in_play(head, [*ranked, measure.table])
        found = self._column(
            head, [t for t in tables if self._reachable(measure, t)], numeric=False
        )
        if found is not None:
            info = self.view.tables[found[0]]
            col = info.column(found[1])
            usable = col is not None and not is_key(info, col) and not is_numeric(col)
            # the measured table's own name column names rows, it does not group them
            if usable and not (found[1].lower() == "name" and found[0] == measure.table):
                return Dim(found[0], found[1], label=found[1])
        entity = self._entity(head, ranked)
        labelled = entity is not None and self.view.label_sql(entity, "x") is not None
        if labelled and (entity != measure.table or measure.kind not in ("count", "rows")):
            assert entity is not None
            return Dim(entity, None, label=singular(entity))
        return None

    def _reachable(self, measure: Measure, table: str) -> bool:
        base = measure.metric.tables if measure.metric else [measure.table]
        return any(self.view.path(b, table) is not None for b in base)

    def _date_column(self, measure: Measure, phrase: str) -> tuple[str, str]:
        candidates = list(measure.metric.tables) if measure.metric else [measure.table]
        for table in list(candidates):
            candidates += [e.right for e in self.view.edges.get(table, [])]
        for table in candidates:
            dates = self.view.date_columns(table)
            named = [d for d in dates if humanize(d).split()[0] in phrase]
            if named or dates:
                return table, (named or dates)[0]
        raise NoPlan("I could not find a date column for the time in the question.")

    # ---- filters -------------------------------------------------------------------------
    def _filters(self, q: str, plan: Plan) -> list[Filter]:
        found: list[Filter] = []
        taken: list[tuple[int, int]] = []
        for table, column, value in sorted(self.values, key=lambda v: -len(v[2])):
            if not re.search(r"[a-zA-Z]{2}", value):
                continue  # "3" in "at least 3 makers" is a number, not a value of some column
            m = re.search(r"(?<![\w])" + re.escape(value.strip().lower()) + r"s?(?![\w])", q)
            if not m or any(a < m.end() and m.start() < b for a, b in taken):
                continue
            if any(d.table == table and d.column == column for d in plan.dims):
                continue
            if not self._reachable(plan.measure, table):
                continue
            taken.append((m.start(), m.end()))
            found.append(Filter(table, column, "=", "'" + value.replace("'", "''") + "'"))
        return found + self._flags(q, plan)

    def _flags(self, q: str, plan: Plan) -> list[Filter]:
        """Yes/no columns named in the question ('discontinued products') -> col = 1 (or 0 after
        'not'/'non-')."""
        found = []
        for table in self.view.tables:
            if not self._reachable(plan.measure, table):
                continue
            for column in self.view.tables[table].columns:
                name = column.name.lower()
                flag = (
                    (column.type or "").upper().startswith("BOOL")
                    or bool(re.match(r"(is|has)_", name))
                    or name in ("discontinued", "active", "deleted", "enabled", "archived")
                )
                spoken = humanize(re.sub(r"^(is|has)_", "", column.name))
                if not flag or not (
                    m := re.search(r"\b(not |non-?)?" + re.escape(spoken) + r"\b", q)
                ):
                    continue
                if table != plan.measure.table and not _mentions(q, singular(humanize(table))):
                    continue
                found.append(Filter(table, column.name, "=", "0" if m.group(1) else "1"))
        return found

    # ---- time ----------------------------------------------------------------------------
    def _time(self, q: str, plan: Plan) -> None:
        start = end = None
        if m := _QUARTER.search(q):
            quarter, year = int(m.group(1)), int(m.group(2))
            start = f"{year}-{3 * quarter - 2:02d}-01"
            end = f"{year + quarter // 4}-{(3 * quarter) % 12 + 1:02d}-01"
            plan.time_label = f"in Q{quarter} {year}"
        elif m := _MONTH_YEAR.search(q):
            month, year = MONTHS.index(m.group(1)) + 1, int(m.group(2))
            start = f"{year}-{month:02d}-01"
            end = f"{year + month // 12}-{month % 12 + 1:02d}-01"
            plan.time_label = f"in {m.group(1).title()} {year}"
        elif years := [int(y) for y in _YEAR.findall(q)]:
            if len(years) >= 2 and re.search(r"\bbetween\b|\bfrom\b", q):
                start, end = f"{min(years)}-01-01", f"{max(years) + 1}-01-01"
                plan.time_label = f"from {min(years)} to {max(years)}"
            elif re.search(r"\b(since|after)\s+" + str(years[0]), q):
                start, end = f"{years[0]}-01-01", "9999-12-31"
                plan.time_label = f"since {years[0]}"
            else:
                start, end = f"{years[0]}-01-01", f"{years[0] + 1}-01-01"
                plan.time_label = f"in {years[0]}"
        elif re.search(r"\b(last|this|previous)\s+(year|quarter|month)\b", q):
            start, end = self._relative(q, plan)
        if start is None or end is None:
            return
        table, column = self._date_column(plan.measure, q)
        plan.time = (table, column, start, end)

    def _relative(self, q: str, plan: Plan) -> tuple[str | None, str | None]:
        table, column = self._date_column(plan.measure, q)
        if (table, column) not in self.latest:
            self.latest[(table, column)] = self.latest_of(table, column) if self.latest_of else None
        latest = self.latest[(table, column)]
        if not latest:
            return None, None
        year, month = int(latest[:4]), int(latest[5:7])
        m = re.search(r"\b(last|this|previous)\s+(year|quarter|month)\b", q)
        assert m is not None
        which, unit = m.groups()
        # "last year" is the year before the data's latest (the knowledge file's convention);
        # "last quarter"/"last month" is the latest one in the data.
        back = 1 if (which != "this" and unit == "year") else 0
        if unit == "year":
            y = year - back
            plan.time_label = f"in {y}"
            return f"{y}-01-01", f"{y + 1}-01-01"
        if unit == "quarter":
            quarter = (month - 1) // 3 + 1 - back
            y = year
            if quarter == 0:
                quarter, y = 4, year - 1
            plan.time_label = f"in Q{quarter} {y}"
            return (
                f"{y}-{3 * quarter - 2:02d}-01",
                f"{y + quarter // 4}-{(3 * quarter) % 12 + 1:02d}-01",
            )
        month -= back
        if month == 0:
            month, year = 12, year - 1
        plan.time_label = f"in {MONTHS[month - 1].title()} {year}"
        return f"{year}-{month:02d}-01", f"{year + month // 12}-{month % 12 + 1:02d}-01"


def metrics_from(glossary: list[Any]) -> list[Metric]:
    """Glossary terms that carry SQL, with the other names their definitions give."""
    found = []
    for term in glossary:
        if not term.sql or not term.tables:
            continue
        names = [term.term.lower()]
        if m := re.search(r"also called ([^.]+)", term.definition, re.I):
            names += [n.strip().lower() for n in re.split(r",|\bor\b", m.group(1)) if n.strip()]
        found.append(Metric(term.term, names, term.sql, list(term.tables), term.filter))
    return found
