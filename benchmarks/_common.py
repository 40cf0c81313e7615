"""Helpers the benchmark scripts share: gold queries, percentiles, peak memory, output."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

# Runnable as `python benchmarks/NAME.py` from anywhere: the project root goes on the path.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.databases import Database, DatabaseConfig  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
T = TypeVar("T")


@dataclass(frozen=True)
class GoldQuery:
    """One gold query of a benchmark suite and the SQLite file it runs on."""

    suite: str
    db_id: str
    sql: str
    db_path: Path


def require_shared_data() -> Path:
    """../shared/data, or exit 0 with a message saying why the benchmark was skipped."""
    if not (SHARED_DATA / "spider_dev" / "dev.json").is_file():
        print(f"SKIP: shared data not found at {SHARED_DATA} (Spider dev, BIRD mini-dev).")
        print('RESULT {"skipped": "shared data missing"}')
        sys.exit(0)
    return SHARED_DATA


def _gold(root: Path, suite: str, file: str, sql_key: str, db_folder: str) -> list[GoldQuery]:
    if not (root / file).is_file():
        return []
    items = json.loads((root / file).read_text(encoding="utf-8"))
    found = []
    for item in items:
        path = root / db_folder / item["db_id"] / f"{item['db_id']}.sqlite"
        if path.is_file():
            found.append(GoldQuery(suite, item["db_id"], item[sql_key], path))
    return found


def spider_queries(data: Path) -> list[GoldQuery]:
    """Spider dev gold queries whose database is present."""
    return _gold(data / "spider_dev", "spider", "dev.json", "query", "database")


def bird_queries(data: Path) -> list[GoldQuery]:
    """BIRD mini-dev (SQLite) gold queries whose database is present."""
    return _gold(data / "bird_minidev", "bird", "mini_dev_sqlite.json", "SQL", "dev_databases")


def sqlite_database(path: Path, *, max_rows: int = 1000, name: str | None = None) -> Database:
    """A sqlsage Database over a SQLite file (read-only, pooled)."""
    config = DatabaseConfig(name=name or path.stem, url=f"sqlite:///{path}", max_rows=max_rows)
    return Database(config)


class Databases:
    """One Database per SQLite file, built on first use and disposed together."""

    def __init__(self, max_rows: int = 1000) -> None:
        self.max_rows = max_rows
        self._by_path: dict[Path, Database] = {}

    def get(self, path: Path) -> Database:
        """The Database for this file."""
        if path not in self._by_path:
            self._by_path[path] = sqlite_database(path, max_rows=self.max_rows)
        return self._by_path[path]

    def close(self) -> None:
        """Dispose of every engine."""
        for database in self._by_path.values():
            database.dispose()


# ---- statistics ----------------------------------------------------------------------------
def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile (0..100) with linear interpolation; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The median (nan when empty)."""
    return percentile(values, 50)


def ms_summary(seconds: Sequence[float], pcts: Iterable[int] = (50, 90, 99)) -> dict[str, float]:
    """Percentiles of durations given in seconds, in milliseconds rounded to µs."""
    return {f"p{p}_ms": round(percentile(seconds, p) * 1000, 3) for p in pcts}


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """fn's value and its wall time in seconds."""
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


# ---- peak memory -------------------------------------------------------------------------
def _proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    # Writing 5 to clear_refs resets VmHWM (Linux >= 4.0) so it measures only what follows.
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class _RssSampler:
    """Fallback when VmHWM cannot be reset: sample VmRSS every millisecond."""

    def __init__(self) -> None:
        self.peak_kb = _proc_status_kb("VmRSS") or 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.peak_kb = max(self.peak_kb, _proc_status_kb("VmRSS") or 0)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class PeakMemory:
    """Peak Python allocations (tracemalloc) and peak resident memory above the start."""

    tracemalloc_peak_mb: float
    rss_delta_mb: float | None
    rss_method: str


def measure_peak(fn: Callable[[], T]) -> tuple[T, PeakMemory]:
    """Run fn under tracemalloc while tracking the process's resident-set peak."""
    before_kb = _proc_status_kb("VmRSS")
    hwm_reset = before_kb is not None and _reset_peak_rss()
    sampler = None if hwm_reset or before_kb is None else _RssSampler()
    tracemalloc.start()
    try:
        if sampler is not None:
            with sampler:
                value = fn()
        else:
            value = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if before_kb is None:
        rss_delta, method = None, "unavailable"
    elif sampler is not None:
        rss_delta, method = (sampler.peak_kb - before_kb) / 1024, "VmRSS sampled every 1 ms"
    else:
        rss_delta, method = ((_proc_status_kb("VmHWM") or 0) - before_kb) / 1024, "VmHWM"
    return value, PeakMemory(round(peak / 2**20, 2), _round(rss_delta), method)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# ---- output ------------------------------------------------------------------------------
def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A plain aligned table: first column left, the others right."""
    text = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in text)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in text:
        print(line(row))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:,.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def emit_result(payload: dict[str, Any]) -> None:
    """The machine-readable last line: RESULT {json} (NaN becomes null)."""
    print("RESULT " + json.dumps(_clean(payload), sort_keys=True, allow_nan=False))


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _clean(dataclasses.asdict(value))
    if isinstance(value, Path):
        return str(value)
    return value
