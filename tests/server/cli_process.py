"""Run the real `sqlsage` console script as a process, for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

SQLSAGE = str(Path(sys.executable).with_name("sqlsage"))
CliRun = Callable[..., subprocess.CompletedProcess[str]]


def cli_runner(
    data_dir: Path, cwd: Path, *, timeout: float = 60, drop: tuple[str, ...] = ()
) -> CliRun:
    """A function running `sqlsage ARGS` on this data directory, with no SQLSAGE_* settings (nor
    the variables in `drop`) from the environment; it fails the test on any traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQLSAGE_") and k not in drop}
    env["SQLSAGE_DATA_DIR"] = str(data_dir)

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [SQLSAGE, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            input=stdin,
            timeout=timeout,
        )
        assert "Traceback" not in done.stderr + done.stdout, done.stderr
        return done

    return run
