"""One Settings object: defaults < sqlsage.toml < SQLSAGE_* environment < explicit overrides."""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tools.errors import INVALID_CONFIG, SqlsageError

SAMPLE_DB = "sample"
_FILE_VALUES: ContextVar[dict[str, Any] | None] = ContextVar("sqlsage_file_values", default=None)
DEFAULT_DB_FROM_URL = "default"


class DatabaseSettings(BaseModel):
    """One `[databases.NAME]` table of sqlsage.toml."""

    model_config = {"extra": "forbid"}

    url: str
    description: str = ""
    max_rows: int = Field(default=1000, ge=1, le=1_000_000)
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    schemas: list[str] | None = None
    include_tables: list[str] | None = None
    exclude_tables: list[str] = Field(default_factory=list)
    exclude_columns: list[str] = Field(default_factory=list)
    comments_file: str | None = None

    @field_validator("url")
    @classmethod
    def _url_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must be a SQLAlchemy URL such as 'sqlite:///shop.db'")
        return value.strip()


class Settings(BaseSettings):
    """Everything configurable, with the env names of ../shared/ARCHITECTURE.md."""

    model_config = SettingsConfigDict(env_prefix="SQLSAGE_", extra="forbid")

    config: Path | None = None
    data_dir: Path = Path(".sqlsage")
    database_url: str | None = None
    databases: dict[str, DatabaseSettings] = Field(default_factory=dict)
    default_database: str | None = None
    model: str = "builtin"
    model_fallbacks: str = ""
    model_api_base: str | None = None
    model_timeout_s: float = Field(default=60.0, gt=0, le=600)
    embedding: str = "builtin"
    embedding_api_base: str | None = None
    knowledge_dir: Path | None = None
    checkpoint_url: str | None = None
    chroma_url: str | None = None
    redis_url: str | None = None
    api_keys: str = ""
    api_keys_file: Path | None = None
    admin_users: str = ""
    models: str = ""
    cache_ttl_s: float = Field(default=300.0, ge=0, le=86_400)
    rate_limit_per_minute: float = Field(default=120.0, gt=0, le=1_000_000)
    rate_limit_burst: int = Field(default=30, ge=1, le=1_000_000)
    budget_turns_per_day: int | None = Field(default=None, ge=0)
    budget_tokens_per_day: int | None = Field(default=None, ge=0)
    budget_usd_per_day: float | None = Field(default=None, ge=0)
    max_body_bytes: int = Field(default=1_000_000, ge=1_024, le=100_000_000)
    cors_origins: str = ""
    allowed_hosts: str = ""
    mcp_stdio: Literal["loop", "sdk"] = "loop"
    event_replay_ttl_s: float = Field(default=900.0, gt=0, le=86_400)
    export_max_rows: int = Field(default=100_000, ge=1, le=10_000_000)
    max_running_turns: int = Field(default=32, ge=1, le=10_000)
    require_services: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Priority: explicit overrides > SQLSAGE_* environment > sqlsage.toml > defaults.
        return (init_settings, env_settings, _FileValues(settings_cls))

    def fallback_models(self) -> list[str]:
        """SQLSAGE_MODEL_FALLBACKS as a list, in order."""
        return [m.strip() for m in self.model_fallbacks.split(",") if m.strip()]

    def allowed_models(self) -> list[str]:
        """Model names the API accepts: SQLSAGE_MODELS, else the configured model, its
        fallbacks and the builtin. Anything else (a URL, a path, another provider) is refused."""
        named = [m.strip() for m in self.models.split(",") if m.strip()]
        candidates = named or [self.model, *self.fallback_models(), "builtin"]
        return list(dict.fromkeys(candidates))

    def cors_origin_list(self) -> list[str]:
        """SQLSAGE_CORS_ORIGINS as a list (empty: CORS closed)."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def allowed_host_list(self) -> list[str]:
        """SQLSAGE_ALLOWED_HOSTS: Host headers the MCP endpoint answers besides loopback
        (DNS-rebinding protection), e.g. 'sqlsage.example.com:*'."""
        return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]

    def admin_user_list(self) -> list[str]:
        """Users (from the API keys) allowed to read the audit log."""
        return [u.strip() for u in self.admin_users.split(",") if u.strip()]

    def knowledge_folder(self) -> Path:
        """Where knowledge/NAME.yml files live: configured, else next to the config file."""
        if self.knowledge_dir is not None:
            return self.knowledge_dir
        return (self.config.parent if self.config else Path.cwd()) / "knowledge"

    def database_names(self) -> list[str]:
        """Configured database names, the default first."""
        return list(self.databases)

    def default_db(self) -> str:
        """The database used when none is named."""
        if self.default_database:
            return self.default_database
        if self.database_url:
            return DEFAULT_DB_FROM_URL
        return next(iter(self.databases), SAMPLE_DB)


class _FileValues(PydanticBaseSettingsSource):
    """The parsed sqlsage.toml, handed in by load_settings."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_FILE_VALUES.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_VALUES.get() or {})


def config_path(explicit: str | Path | None = None) -> Path | None:
    """The sqlsage.toml to read: --config, else SQLSAGE_CONFIG, else ./sqlsage.toml if present."""
    named = explicit or os.environ.get("SQLSAGE_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise SqlsageError(
                INVALID_CONFIG,
                f"Config file '{named}' does not exist.",
                hint="Pass --config with an existing sqlsage.toml, or unset SQLSAGE_CONFIG.",
            )
        return path
    local = Path("sqlsage.toml")
    return local if local.is_file() else None


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a sqlsage.toml; syntax errors name the file and line."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SqlsageError(
            INVALID_CONFIG,
            f"Config file '{path}' is not valid TOML: {exc}.",
            hint="Fix the syntax at that line; see README 'Configuration' for an example.",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SqlsageError(
            INVALID_CONFIG, f"Config file '{path}' cannot be read: {exc}.", hint=None
        ) from None


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from the TOML file, the environment and explicit overrides."""
    path = config_path(config)
    file_values = read_toml(path) if path else {}
    token = _FILE_VALUES.set(file_values)
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None}, config=path)
    except ValidationError as exc:
        raise _config_error(exc, path) from None
    finally:
        _FILE_VALUES.reset(token)
    _resolve_relative_paths(settings, path.parent if path else Path.cwd())
    return settings


def _resolve_relative_paths(settings: Settings, base_dir: Path) -> None:
    # Relative sqlite paths in a config file mean "relative to the file", as users expect.
    if settings.knowledge_dir is not None and not settings.knowledge_dir.is_absolute():
        settings.knowledge_dir = base_dir / settings.knowledge_dir
    if settings.api_keys_file is not None and not settings.api_keys_file.is_absolute():
        settings.api_keys_file = base_dir / settings.api_keys_file
    for db in settings.databases.values():
        db.url = _absolute_sqlite_url(db.url, base_dir)
        if db.comments_file and not Path(db.comments_file).is_absolute():
            db.comments_file = str(base_dir / db.comments_file)


def _absolute_sqlite_url(url: str, base_dir: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith("sqlite:////"):
        rest = url[len(prefix) :]
        if rest and not rest.startswith(":memory:") and not rest.startswith("file:"):
            return prefix + str((base_dir / rest).resolve())
    return url


def _config_error(exc: ValidationError, path: Path | None) -> SqlsageError:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    value = first.get("input")
    where = f"in '{path}'" if path else "in the environment"
    if first["type"] == "extra_forbidden":
        return SqlsageError(
            INVALID_CONFIG,
            f"Unknown setting '{key}' {where}.",
            hint="Check the spelling against README 'Configuration'.",
        )
    top = str(first["loc"][0])
    env_name = "SQLSAGE_" + top.upper()
    from_env = env_name in os.environ or path is None
    return SqlsageError(
        INVALID_CONFIG,
        f"Config '{key}' has value {value!r} {'in ' + env_name if from_env else where}. "
        f"{first['msg']}.",
        hint=f"Fix {env_name}." if from_env else f"Fix '{key}' in '{path}'.",
    )
