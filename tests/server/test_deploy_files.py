"""The container packaging (Dockerfile, .dockerignore, deploy/docker-compose.yml), checked
without a Docker engine.

The compose file is validated against the Compose Specification JSON schema vendored at
tests/fixtures/compose-spec.json: upstream compose-spec/compose-spec `schema/compose-spec.json`
(JSON Schema draft 2020-12), byte for byte as shipped in the PyPI package check-jsonschema
0.39.0 (`check_jsonschema/builtin_schemas/vendor/compose-spec.json`, its copy of 2026-10-26).
The sha256 below pins it, so refreshing it is a deliberate change. See docs/deploy.md.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
import jsonschema
import pytest
import yaml

from server.settings import Settings

from .live_server import live_server

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"

SCALE_OUT_ENV = {
    "SQLSAGE_CHECKPOINT_URL": "postgresql://",
    "SQLSAGE_REDIS_URL": "redis://redis:6379/0",
    "SQLSAGE_CHROMA_URL": "http://chroma:8000",
}
BACKING_SERVICES = ("postgres", "redis", "chroma")


# ---- the compose file ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data = SCHEMA.read_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256, "compose-spec.json changed"
    loaded: dict[str, Any] = json.loads(data)
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def schema_errors(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_file_matches_the_compose_specification(
    schema: dict[str, Any], compose: dict[str, Any]
) -> None:
    assert schema_errors(schema, compose) == []


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        (("services", "sqlsage"), "read_only", ["yes"]),  # wrong type
        (("services", "sqlsage"), "replicas", 2),  # not a service key (it lives under deploy)
        (("services", "sqlsage", "depends_on", "postgres"), "condition", "service_ready"),
        (("services", "sqlsage", "healthcheck"), "start_periods", "60s"),  # misspelt
        ((), "service", {}),  # misspelt top-level key
    ],
)
def test_the_schema_rejects_a_broken_compose_file(
    schema: dict[str, Any], compose: dict[str, Any], where: tuple[str, ...], key: str, value: Any
) -> None:
    broken = copy.deepcopy(compose)
    node = broken
    for step in where:
        node = node[step]
    node[key] = value
    assert schema_errors(schema, broken), f"{'.'.join((*where, key))}={value!r} was accepted"


def test_compose_services_and_their_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"sqlsage", *BACKING_SERVICES}
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
        assert not service["healthcheck"].get("disable", False)
    depends = services["sqlsage"]["depends_on"]
    assert {name: d["condition"] for name, d in depends.items()} == dict.fromkeys(
        BACKING_SERVICES, "service_healthy"
    )
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    # The Chroma server release must match the locked client (the HTTP API changes between them).
    assert services["chroma"]["image"] == f"chromadb/chroma:{chromadb.__version__}"
    assert "/api/v2/heartbeat" in " ".join(services["chroma"]["healthcheck"]["test"])
    for name in ("postgres", "redis", "chroma"):
        assert services[name].get("volumes"), f"{name} keeps no data"


def test_compose_sqlsage_service_is_scaled_read_only_and_keyed(
    compose: dict[str, Any], dockerfile: Dockerfile
) -> None:
    app = compose["services"]["sqlsage"]
    assert app["build"]["context"] == ".."
    assert (COMPOSE.parent / app["build"]["context"] / app["build"]["dockerfile"]).is_file()
    assert app["deploy"]["replicas"] >= 2
    assert app["read_only"] is True
    mounts = [m.split(":", 1)[0] for m in app["tmpfs"]]
    env = app["environment"]
    assert env["SQLSAGE_DATA_DIR"] in mounts, "the data directory is not writable"
    assert "/tmp" in mounts
    # The same command as the image, and never the opt-out of authentication.
    assert app["command"] == dockerfile.exec_form("CMD")
    assert "--insecure-no-auth" not in json.dumps(app)
    # API keys must be supplied: ${VAR:?message} makes compose refuse to start without them.
    assert re.fullmatch(r"\$\{SQLSAGE_API_KEYS:\?[^}]+\}", env["SQLSAGE_API_KEYS"])
    for name, prefix in SCALE_OUT_ENV.items():
        assert env[name].startswith(prefix), f"{name}={env[name]!r}"
    assert "@postgres:5432/" in env["SQLSAGE_CHECKPOINT_URL"]
    # The healthcheck is the image's.
    assert app["healthcheck"]["test"] == ["CMD", *dockerfile.healthcheck_command()]


def test_compose_sets_only_real_settings(compose: dict[str, Any]) -> None:
    """Every SQLSAGE_* name is a field of server.settings.Settings (a typo would be ignored by
    compose and refused by sqlsage at start-up, in production)."""
    fields = set(Settings.model_fields)
    for name in compose["services"]["sqlsage"]["environment"]:
        assert name.startswith("SQLSAGE_"), name
        assert name.removeprefix("SQLSAGE_").lower() in fields, f"{name} is not a setting"


# ---- the Dockerfile --------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    arg_defaults: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        logical: list[str] = []
        pending = ""
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue  # comments inside a continued instruction are skipped, as docker does
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            logical.append(pending + line)
            pending = ""
        assert not pending, "the Dockerfile ends inside a continued instruction"
        instructions, stage, args = [], -1, {}
        for line in logical:
            keyword, _, rest = line.partition(" ")
            keyword = keyword.upper()
            if keyword == "FROM":
                stage += 1
            if keyword == "ARG" and stage == -1 and "=" in rest:
                name, _, default = rest.strip().partition("=")
                args[name] = default
            instructions.append(Instruction(keyword, rest.strip(), stage))
        return cls(instructions, args)

    def all(self, keyword: str, *, final: bool = False) -> list[str]:
        last = max(i.stage for i in self.instructions)
        return [
            i.args
            for i in self.instructions
            if i.keyword == keyword and (not final or i.stage == last)
        ]

    def exec_form(self, keyword: str) -> list[str]:
        (args,) = self.all(keyword, final=True)
        value = json.loads(args)
        assert isinstance(value, list), f"{keyword} is not in exec form"
        return value

    def healthcheck_command(self) -> list[str]:
        (args,) = self.all("HEALTHCHECK", final=True)
        _options, sep, command = args.partition("CMD ")
        assert sep, "HEALTHCHECK has no CMD"
        value = json.loads(command)
        assert isinstance(value, list)
        return value

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV", final=True):
            for item in shlex.split(args):
                name, _, value = item.partition("=")
                values[name] = value
        return values


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.parse(DOCKERFILE.read_text(encoding="utf-8"))


def test_dockerfile_base_image_and_command(dockerfile: Dockerfile) -> None:
    bases = [
        re.sub(r"\$\{(\w+)\}", lambda m: dockerfile.arg_defaults[m.group(1)], f.split()[0])
        for f in dockerfile.all("FROM")
    ]
    assert bases and all(b == "python:3.11-slim" for b in bases), bases
    assert dockerfile.exec_form("CMD") == [
        "sqlsage",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    assert dockerfile.all("EXPOSE", final=True) == ["8000"]
    assert not dockerfile.all("ENTRYPOINT")


def test_dockerfile_runs_as_a_non_root_user(dockerfile: Dockerfile) -> None:
    users = dockerfile.all("USER", final=True)
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # The user is set after everything that needs root (installing, chown).
    last = max(i.stage for i in dockerfile.instructions)
    final = [i for i in dockerfile.instructions if i.stage == last]
    user_at = max(n for n, i in enumerate(final) if i.keyword == "USER")
    assert not [i for i in final[user_at:] if i.keyword in ("RUN", "COPY", "ADD")]


def test_dockerfile_installs_only_hash_checked_packages(dockerfile: Dockerfile) -> None:
    runs = " && ".join(dockerfile.all("RUN"))
    installs = [c.strip() for c in re.split(r"&&|;", runs) if "pip install" in c]
    assert any("--require-hashes" in c and "-r requirements.lock" in c for c in installs)
    assert any("--no-deps" in c and c.rstrip().endswith(" .") for c in installs)
    for command in installs:
        # Either every file is hash-checked, or nothing is resolved (the project itself).
        assert "--require-hashes" in command or "--no-deps" in command, command
    for banned in ("playwright install", "curl ", "wget ", "apt-get", "huggingface", "http://"):
        assert banned not in runs, f"the build runs {banned!r}"
    assert not [a for a in dockerfile.all("ADD") if "://" in a]


def test_dockerfile_works_with_a_read_only_root(dockerfile: Dockerfile) -> None:
    env = dockerfile.env()
    data = env["SQLSAGE_DATA_DIR"]
    assert data.startswith("/") and data != "/"
    assert env["HOME"] == data or env["HOME"].startswith(data + "/")
    assert env["TMPDIR"]
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert dockerfile.all("VOLUME", final=True) == [json.dumps([data])]
    assert dockerfile.all("WORKDIR", final=True) == [data]


def test_dockerfile_healthcheck_probes_api_health(dockerfile: Dockerfile) -> None:
    command = dockerfile.healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:8000/api/health" in command[2]
    assert "--start-period=" in dockerfile.all("HEALTHCHECK")[0]


def copied_sources(dockerfile: Dockerfile) -> set[str]:
    """What the build copies from the repository (COPY SRC... DEST, not from another stage)."""
    return {w for a in dockerfile.all("COPY") if "--from" not in a for w in a.split()[:-1]}


def test_dockerfile_copies_every_package(dockerfile: Dockerfile) -> None:
    """A package added to pyproject.toml but not copied would be missing from the image."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = copied_sources(dockerfile)
    assert {p.rstrip("*") for p in include} <= copied
    assert {"requirements.lock", "pyproject.toml", "README.md"} <= copied
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_dockerignore_keeps_local_state_out_and_sources_in(dockerfile: Dockerfile) -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".sqlsage", ".git", "sqlsage.toml", ".env"} <= patterns
    assert not copied_sources(dockerfile) & patterns, (
        "the Dockerfile copies something .dockerignore leaves out"
    )


# ---- the healthcheck command, run for real ---------------------------------------------------


def run_healthcheck(dockerfile: Dockerfile, port: int) -> int:
    _, flag, code = dockerfile.healthcheck_command()
    code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    return subprocess.run([sys.executable, flag, code], capture_output=True, timeout=30).returncode


def test_healthcheck_command_passes_against_a_live_server(
    dockerfile: Dockerfile, server_dir: Path
) -> None:
    with live_server(Settings(data_dir=server_dir, api_keys="deploy-test-key=alice")) as server:
        port = int(server.url.rsplit(":", 1)[1])
        assert run_healthcheck(dockerfile, port) == 0


def test_healthcheck_command_fails_when_nothing_listens(dockerfile: Dockerfile) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        assert run_healthcheck(dockerfile, port) != 0
