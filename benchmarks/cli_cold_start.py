"""Cold start of the CLI: wall time of `sqlsage sql run "SELECT 1"` from process start to exit.

Runs in a temporary directory with SQLSAGE_DATA_DIR pointing at a temporary data dir and no
other SQLSAGE_* settings. The first run generates the sample database and is reported apart;
then one warm-up and RUNS timed runs. `python -X importtime` shows where imports go.

    .venv/bin/python benchmarks/cli_cold_start.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, emit_result, percentile, print_table, require_shared_data

RUNS = 10
TARGET_S = 1.0
COMMAND = ("sql", "run", "SELECT 1")


def sqlsage_executable() -> Path:
    """The sqlsage script beside this interpreter (the project venv)."""
    for candidate in (Path(sys.executable).parent / "sqlsage", ROOT / ".venv" / "bin" / "sqlsage"):
        if candidate.is_file():
            return candidate
    sys.exit(
        f"No sqlsage executable beside {sys.executable} or in {ROOT / '.venv/bin'}; "
        "run `make install` first."
    )


def clean_env(data_dir: Path) -> dict[str, str]:
    """The environment without any SQLSAGE_* setting, data dir pointed at `data_dir`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLSAGE_")}
    env["SQLSAGE_DATA_DIR"] = str(data_dir)
    return env


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Seconds to the first byte of output and to exit, and the output."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    first = os.read(proc.stdout.fileno(), 1)
    first_at = time.perf_counter() - started
    rest, err = proc.communicate()
    ended = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err.decode()[-2000:]}")
    return first_at, ended, (first + rest).decode()


def import_times(code: str, cwd: Path, env: dict[str, str]) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) from `python -X importtime -c code` (second run)."""
    argv = [sys.executable, "-X", "importtime", "-c", code]
    for _ in range(2):  # the first run may still write bytecode caches
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|")
        rows.append((name.strip(), int(self_us), int(cumulative_us)))
    return rows


def main() -> None:
    """Run the benchmark and print the tables and the RESULT line."""
    require_shared_data()
    exe = sqlsage_executable()
    argv = [str(exe), *COMMAND]
    with tempfile.TemporaryDirectory(prefix="sqlsage-bench-") as tmp:
        cwd, data_dir = Path(tmp) / "cwd", Path(tmp) / "data"
        cwd.mkdir()
        env = clean_env(data_dir)
        _, first_run, output = run_once(argv, cwd, env)
        if not (data_dir / "sample.sqlite").is_file():
            raise RuntimeError(f"the first run did not create {data_dir / 'sample.sqlite'}")
        run_once(argv, cwd, env)  # warm-up
        runs = [run_once(argv, cwd, env)[:2] for _ in range(RUNS)]
        bare = _bare_python(cwd, env)
        cli_imports = import_times("import server.cli", ROOT, env)
        command_imports = import_times(
            "import sys; sys.argv = ['sqlsage', 'sql', 'run', 'SELECT 1']\n"
            "from server.cli import main\nmain()",
            cwd,
            env,
        )
    exits = [e for _, e in runs]
    firsts = [f for f, _ in runs]
    figures = {
        "first_run_with_sample_generation_s": round(first_run, 3),
        "exit_s": {
            "min": round(min(exits), 3),
            "p50": round(percentile(exits, 50), 3),
            "max": round(max(exits), 3),
        },
        "first_output_s_p50": round(percentile(firsts, 50), 3),
        "bare_python_startup_s": round(bare, 3),
    }
    print(f"`sqlsage {' '.join(COMMAND)}`: {RUNS} runs after 1 warm-up (seconds)")
    print_table(
        ["measure", "min", "p50", "max"],
        [
            ["process start -> exit", min(exits), percentile(exits, 50), max(exits)],
            ["process start -> first output", min(firsts), percentile(firsts, 50), max(firsts)],
        ],
    )
    print(f"first run, including sample DB generation: {first_run:.3f} s")
    print(f"bare `python -c 'print()'` for reference (min of 5): {bare:.3f} s")
    met = percentile(exits, 50) < TARGET_S
    print(f"target p50 < {TARGET_S} s: {'met' if met else 'MISSED'}")
    top_cli = sorted(cli_imports, key=lambda r: -r[2])[:5]
    top_cmd = sorted(command_imports, key=lambda r: -r[2])[:5]
    top_self = sorted(command_imports, key=lambda r: -r[1])[:5]
    print("\n-X importtime `import server.cli`: top 5 by cumulative time")
    print_table(
        ["module", "cumulative ms", "self ms"], [[n, c / 1000, s / 1000] for n, s, c in top_cli]
    )
    print('\n-X importtime, whole `sql run "SELECT 1"` command: top 5 by cumulative / by self')
    print_table(
        ["module", "cumulative ms", "self ms"], [[n, c / 1000, s / 1000] for n, s, c in top_cmd]
    )
    print_table(
        ["module", "self ms", "cumulative ms"], [[n, s / 1000, c / 1000] for n, s, c in top_self]
    )
    emit_result(
        {
            "benchmark": "cli_cold_start",
            "runs": RUNS,
            "target_s": TARGET_S,
            "target_met": met,
            **figures,
            "importtime_server_cli_top5": [
                {"module": n, "cumulative_ms": c / 1000, "self_ms": s / 1000} for n, s, c in top_cli
            ],
            "importtime_sql_run_top5": [
                {"module": n, "cumulative_ms": c / 1000, "self_ms": s / 1000} for n, s, c in top_cmd
            ],
            "output_sample": output.strip().splitlines()[:6],
        }
    )


def _bare_python(cwd: Path, env: dict[str, str]) -> float:
    return min(run_once([sys.executable, "-c", "print()"], cwd, env)[1] for _ in range(5))


if __name__ == "__main__":
    main()
