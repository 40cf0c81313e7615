"""`sqlsage serve`: the HTTP server under uvicorn, with the safety checks that come before it
listens (loopback only without API keys, a free port, settings that parse)."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from server.auth import ApiKeys
from server.settings import Settings, load_settings
from tools.errors import INVALID_ARGUMENT, INVALID_CONFIG, SqlsageError
from tools.urls import looks_like_url

APP_FACTORY = "server.http:create_app_from_env"


@dataclass
class ServeOptions:
    """What `sqlsage serve` was asked for."""

    host: str = "127.0.0.1"
    port: int = 8000
    dbs: list[str] = field(default_factory=list)
    model: str | None = None
    workers: int = 1
    insecure_no_auth: bool = False
    config: Path | None = None


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 / ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve_env(options: ServeOptions) -> dict[str, str]:
    """SQLSAGE_* variables that carry the command's flags to every worker process."""
    env: dict[str, str] = {}
    if options.config is not None:
        env["SQLSAGE_CONFIG"] = str(options.config)
    if options.model:
        env["SQLSAGE_MODEL"] = options.model
    urls = {}
    for i, db in enumerate(options.dbs):
        if looks_like_url(db):
            urls[f"db{i + 1}"] = {"url": db}
    if urls:
        base = load_settings(options.config)
        merged = {name: cfg.model_dump() for name, cfg in base.databases.items()} | urls
        env["SQLSAGE_DATABASES"] = json.dumps(merged)
    if options.dbs:
        first = options.dbs[0]
        env["SQLSAGE_DEFAULT_DATABASE"] = "db1" if looks_like_url(first) else first
    return env


def check_serve(options: ServeOptions, settings: Settings) -> None:
    """Refuse what would be unsafe or cannot work, before binding anything."""
    if not 1 <= options.workers <= 64:
        raise SqlsageError(
            INVALID_ARGUMENT,
            f"--workers {options.workers} is out of range.",
            hint="Use 1 to 64 (about one per core).",
        )
    keys = ApiKeys.from_settings(settings)
    if not keys.enabled and not is_loopback(options.host) and not options.insecure_no_auth:
        raise SqlsageError(
            INVALID_CONFIG,
            f"Refusing to listen on '{options.host}' without API keys: anyone who can reach it "
            "could query your databases.",
            hint="Set SQLSAGE_API_KEYS='key=user,...' (or api_keys_file), bind 127.0.0.1, or "
            "pass --insecure-no-auth if something in front of sqlsage authenticates.",
        )
    check_dbs(options.dbs, settings)
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((options.host.strip("[]"), options.port))
        except OSError as exc:
            raise SqlsageError(
                INVALID_ARGUMENT,
                f"Cannot listen on {options.host}:{options.port}: {exc.strerror or exc}.",
                hint="Pick another --port, or stop what is using it.",
            ) from None


def check_dbs(dbs: list[str], settings: Settings) -> None:
    """Each --db is a configured name or a URL."""
    for name in dbs:
        if not looks_like_url(name) and name not in _known_databases(settings):
            raise SqlsageError(
                INVALID_ARGUMENT,
                f"Unknown database '{name}'. Known: {', '.join(_known_databases(settings))}.",
                hint="Name a [databases.NAME] from sqlsage.toml, or pass a SQLAlchemy URL.",
            )


def _known_databases(settings: Settings) -> list[str]:
    from server.settings import DEFAULT_DB_FROM_URL, SAMPLE_DB

    names = list(settings.databases)
    if settings.database_url:
        names.append(DEFAULT_DB_FROM_URL)
    if SAMPLE_DB not in names:
        names.append(SAMPLE_DB)
    return names


def run_server(options: ServeOptions) -> None:
    """Check, print the URL, and serve until interrupted."""
    import uvicorn

    from server.logs import configure_logging

    os.environ.update(serve_env(options))
    settings = load_settings(options.config)
    check_serve(options, settings)
    shown = f"[{options.host}]" if ":" in options.host else options.host
    print(f"sqlsage is serving on http://{shown}:{options.port}  (API docs: /docs)", flush=True)
    configure_logging()
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        log_config=None,
        timeout_graceful_shutdown=30,
    )
