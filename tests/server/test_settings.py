"""Settings: sqlsage.toml, SQLSAGE_* environment, --config, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.resources import build_resources
from server.settings import load_settings
from tools.errors import SqlsageError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SQLSAGE_CONFIG", "SQLSAGE_DATA_DIR", "SQLSAGE_DATABASE_URL", "SQLSAGE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_without_any_file() -> None:
    settings = load_settings()
    assert settings.model == "builtin" and settings.default_db() == "sample"
    assert settings.data_dir == Path(".sqlsage") and settings.config is None


def test_toml_databases_with_relative_sqlite_paths(tmp_path: Path) -> None:
    config_dir = tmp_path / "conf"
    config_dir.mkdir()
    (config_dir / "sqlsage.toml").write_text(
        'data_dir = "/tmp/x"\n[databases.shop]\nurl = "sqlite:///shop.db"\n'
        'description = "Shop"\nmax_rows = 50\ntimeout_s = 5\n'
        'exclude_columns = ["customers.email"]\n',
        encoding="utf-8",
    )
    settings = load_settings(config_dir / "sqlsage.toml")
    shop = settings.databases["shop"]
    assert shop.url == f"sqlite:///{config_dir / 'shop.db'}"
    assert (shop.max_rows, shop.timeout_s, shop.exclude_columns) == (50, 5.0, ["customers.email"])
    assert settings.default_db() == "shop"


def test_environment_wins_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sqlsage.toml").write_text(
        'data_dir = "from-file"\nmodel = "openai/gpt"\n', encoding="utf-8"
    )
    monkeypatch.setenv("SQLSAGE_DATA_DIR", "from-env")
    settings = load_settings()  # ./sqlsage.toml is picked up from the working directory
    assert settings.data_dir == Path("from-env") and settings.model == "openai/gpt"


def test_sqlsage_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('model = "anthropic/claude"\n', encoding="utf-8")
    monkeypatch.setenv("SQLSAGE_CONFIG", str(path))
    assert load_settings().model == "anthropic/claude"


def test_database_url_env_is_the_default_database(
    monkeypatch: pytest.MonkeyPatch, sample_path: Path
) -> None:
    monkeypatch.setenv("SQLSAGE_DATABASE_URL", f"sqlite:///{sample_path}")
    resources = build_resources(load_settings(data_dir=Path("data")))
    try:
        assert resources.database().name == "default"
        assert set(resources.databases.names()) == {"default", "sample"}
    finally:
        resources.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[databases.shop]\nurl = "sqlite:///x.db"\nmax_rows = "abc"\n',
            "Config 'databases.shop.max_rows' has value 'abc'",
        ),
        ('[databases.shop]\nurl = "sqlite:///x.db"\nmax_rows = 0\n', "max_rows"),
        ('[databases.shop]\nurll = "sqlite:///x.db"\n', "databases.shop"),
        ('colour = "blue"\n', "Unknown setting 'colour'"),
        ("[databases.shop\nurl = 1\n", "is not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SqlsageError) as info:
        load_settings(path)
    assert info.value.code == "invalid_config"
    assert expected in info.value.message and info.value.hint


def test_missing_config_file() -> None:
    with pytest.raises(SqlsageError) as info:
        load_settings("nope.toml")
    assert "nope.toml" in info.value.message


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLSAGE_REQUIRE_SERVICES", "perhaps")
    with pytest.raises(SqlsageError) as info:
        load_settings()
    assert "SQLSAGE_REQUIRE_SERVICES" in info.value.message + (info.value.hint or "")


def test_unknown_database_lists_known_and_suggests(sample_path: Path) -> None:
    resources = build_resources(load_settings(data_dir=sample_path.parent))
    try:
        with pytest.raises(SqlsageError) as info:
            resources.database("sampel")
        assert info.value.code == "unknown_database"
        assert "Known: sample" in info.value.message and "sample" in (info.value.hint or "")
        with pytest.raises(SqlsageError):
            resources.database("sqlite:///etc/passwd")  # outside the CLI, URLs are not names
    finally:
        resources.close()
