"""Spider's execution match exactly as the official test-suite evaluator computes it
(taoyds/test-suite-sql-eval, `evaluation.py --etype exec` over `exec_eval.py`).

Its semantics are surprising, and they are reproduced on purpose, not fixed:
- the prediction line is trimmed and cut at its first TAB (the file format is `SQL\\tdb_id`);
- `> =`, `< =` and `! =` are glued back together in both queries;
- unless keep_distinct, every sqlparse token `distinct` is removed from both queries before they
  run, even inside `COUNT(DISTINCT x)` (the official `--keep_distinct` flag turns that off);
- `YEAR(CURDATE())` reads as 2020;
- results are compared as bags of rows with the columns matched up to a permutation; row order
  matters only when the gold SQL's text contains `order by` anywhere (a subquery's counts);
- two empty results match, whatever their columns;
- with --format spider the prediction must be right on every `*.sqlite*` file in the
  database's folder (the official test suite: the distilled databases, when installed there);
- text is decoded with errors ignored; values compare with Python's `==` (so 1 == 1.0 and an
  int never equals its string).
The gold query must run: a gold failure is the dataset's error, not the model's.
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import sqlparse

from tools.readonly import open_sqlite_read_only

Row = tuple[Any, ...]
DEFAULT_TIMEOUT_S = 60.0  # the official TIMEOUT
_PROGRESS_STEPS = 10_000
_CUR_YEAR = re.compile(r"year\s*\(\s*curdate\s*\(\s*\)\s*\)", re.IGNORECASE)


class GoldFailed(Exception):
    """The gold SQL did not run on its database: a dataset error."""


class QueryTimeout(sqlite3.OperationalError):
    """A query ran past its time limit and was interrupted (a prediction that does is wrong)."""


@dataclass(frozen=True)
class ExecVerdict:
    """Whether the prediction's denotation equals the gold's; `reason` says why not."""

    correct: bool
    reason: str | None = None
    ran: bool = True  # False: the prediction failed to run (invalid SQL or timed out)
    timed_out: bool = False


def prediction_sql(line: str) -> str:
    """A prediction as the official script reads a line: trimmed, cut at the first TAB."""
    return line.strip().split("\t")[0]


def postprocess(query: str) -> str:
    """The official glue for comparison operators split by a space."""
    return query.replace("> =", ">=").replace("< =", "<=").replace("! =", "!=")


def remove_distinct(query: str) -> str:
    """Every sqlparse token spelled `distinct` removed, the rest joined as it was."""
    tokens = [t.value for t in sqlparse.parse(query)[0].flatten()]
    return "".join(t for t in tokens if t.lower() != "distinct")


def replace_cur_year(query: str) -> str:
    """`YEAR(CURDATE())` as 2020, as the official evaluator runs it."""
    return _CUR_YEAR.sub("2020", query)


def exec_match(
    db_path: Path | str,
    predicted: str,
    gold: str,
    *,
    keep_distinct: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    suite: bool = False,
) -> ExecVerdict:
    """Spider's verdict for one prediction against its gold query. With `suite`, on every
    database file of the test suite (suite_paths): right only when right on each."""
    p_str, g_str = postprocess(predicted), postprocess(gold)
    if not keep_distinct:
        p_str, g_str = _without_distinct(p_str), _without_distinct(g_str)
    order_matters = "order by" in g_str.lower()
    for path in suite_paths(db_path) if suite else [Path(db_path)]:
        try:
            gold_rows = run_query(path, g_str, timeout_s)
        except sqlite3.Error as error:
            raise GoldFailed(f"{type(error).__name__}: {error}{_on(path, db_path)}") from error
        try:
            predicted_rows = run_query(path, p_str, timeout_s)
        except sqlite3.Error as error:
            return failed_prediction(error)
        if not result_eq(gold_rows, predicted_rows, order_matters=order_matters):
            reason = _difference(gold_rows, predicted_rows, order_matters)
            return ExecVerdict(False, reason + _on(path, db_path))
    return ExecVerdict(True)


def suite_paths(db_path: Path | str) -> list[Path]:
    """The test suite of a Spider database, as the official evaluator finds it: every file
    in the database's folder whose name contains '.sqlite' (the database itself first; the
    distilled test-suite databases, when installed, beside it)."""
    main = Path(db_path)
    others = sorted(
        p for p in main.parent.iterdir() if ".sqlite" in p.name and p.is_file() and p != main
    )
    return [main, *others]


def _on(path: Path, main: Path | str) -> str:
    return "" if path == Path(main) else f" (on test-suite database {path.name})"


def failed_prediction(error: sqlite3.Error) -> ExecVerdict:
    """The verdict on a prediction that did not run: wrong, saying why."""
    timed_out = isinstance(error, QueryTimeout)
    reason = str(error) if timed_out else f"{type(error).__name__}: {error}"
    return ExecVerdict(False, f"prediction failed: {reason}", ran=False, timed_out=timed_out)


def _without_distinct(query: str) -> str:
    # sqlparse returns no statement for an empty string; the official code would raise there.
    return remove_distinct(query) if query.strip() else query


def run_query(
    db_path: Path | str, query: str, timeout_s: float, *, lenient_text: bool = True
) -> list[Row]:
    """All rows of one query on a connection that can write nothing and create no file (a
    prediction is model output: `VACUUM INTO` or `ATTACH` must not run), interrupted after
    timeout_s (an OperationalError, like any failure). Text is decoded with errors ignored as
    Spider's script does, or strictly (`lenient_text=False`: BIRD's plain sqlite3 connection,
    where text that is not UTF-8 fails the query)."""
    conn = open_sqlite_read_only(str(db_path))
    try:
        if lenient_text:
            conn.text_factory = lambda b: b.decode(errors="ignore")
        deadline = time.monotonic() + timeout_s
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_STEPS)
        try:
            return conn.execute(replace_cur_year(query)).fetchall()
        except sqlite3.OperationalError as error:
            if time.monotonic() > deadline and "interrupt" in str(error):
                raise QueryTimeout(f"timed out after {timeout_s:g} s") from error
            raise
    finally:
        conn.close()


def permute_tuple(element: Row, perm: Sequence[int]) -> Row:
    """The row's values in the order `perm` names."""
    return tuple(element[i] for i in perm)


def unorder_row(row: Row) -> Row:
    """The row's values sorted by their text and type (a column-order-free signature)."""
    return tuple(sorted(row, key=lambda x: str(x) + str(type(x))))


def quick_rej(result1: list[Row], result2: list[Row], order_matters: bool) -> bool:
    """False when no column permutation can make the results equal (cheap necessary check)."""
    s1 = [unorder_row(row) for row in result1]
    s2 = [unorder_row(row) for row in result2]
    return s1 == s2 if order_matters else set(s1) == set(s2)


def multiset_eq(l1: list[Row], l2: list[Row]) -> bool:
    """The same rows the same number of times."""
    if len(l1) != len(l2):
        return False
    counts: dict[Row, int] = defaultdict(int)
    for row in l1:
        counts[row] += 1
    for row in l2:
        counts[row] -= 1
        if counts[row] < 0:
            return False
    return True


def get_constraint_permutation(
    tab1_sets_by_columns: list[set[Any]], result2: list[Row]
) -> Iterator[tuple[int, ...]]:
    """Column permutations worth trying: all of them up to 3 columns, else those that 20
    sampled rows of result2 allow (a value must occur in the column it is mapped to)."""
    num_cols = len(result2[0])
    perm_constraints = [set(range(num_cols)) for _ in range(num_cols)]
    if num_cols <= 3:
        return product(*perm_constraints)
    for _ in range(20):
        random_tab2_row = random.choice(result2)
        for tab1_col in range(num_cols):
            for tab2_col in set(perm_constraints[tab1_col]):
                if random_tab2_row[tab2_col] not in tab1_sets_by_columns[tab1_col]:
                    perm_constraints[tab1_col].remove(tab2_col)
    return product(*perm_constraints)


def result_eq(result1: list[Row], result2: list[Row], order_matters: bool) -> bool:
    """The official denotation equality: bags of rows up to a column permutation (lists of
    rows when order matters); two empty results are equal."""
    if len(result1) == 0 and len(result2) == 0:
        return True
    if len(result1) != len(result2):
        return False
    num_cols = len(result1[0])
    if len(result2[0]) != num_cols:
        return False
    if not quick_rej(result1, result2, order_matters):
        return False
    tab1_sets_by_columns = [{row[i] for row in result1} for i in range(num_cols)]
    for perm in get_constraint_permutation(tab1_sets_by_columns, result2):
        if len(perm) != len(set(perm)):
            continue
        result2_perm = result2 if num_cols == 1 else [permute_tuple(r, perm) for r in result2]
        if order_matters:
            if result1 == result2_perm:
                return True
        elif set(result1) == set(result2_perm) and multiset_eq(result1, result2_perm):
            return True
    return False


def _difference(gold: list[Row], predicted: list[Row], order_matters: bool) -> str:
    if len(gold) != len(predicted):
        return f"gold has {len(gold)} rows, the prediction {len(predicted)}"
    if gold and len(gold[0]) != len(predicted[0]):
        return f"gold has {len(gold[0])} columns, the prediction {len(predicted[0])}"
    if order_matters and sorted(map(repr, gold)) == sorted(map(repr, predicted)):
        return "the same rows in another order (the gold query orders them)"
    return "different values"
