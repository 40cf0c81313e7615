"""API key parsing (environment and keys file) and authentication, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.auth import LOCAL_USER, ApiKeys
from server.settings import Settings, load_settings
from tools.errors import SqlsageError


def test_keys_from_env_and_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# team keys\n\ncarol-key-0003 = carol\n", encoding="utf-8")
    keys = ApiKeys.from_settings(
        Settings(
            api_keys="alice-key-0001=alice, bob-key-00002=bob",
            api_keys_file=keys_file,
            admin_users="alice",
        )
    )
    assert keys.enabled and keys.users == {"alice", "bob", "carol"}
    alice = keys.authenticate("Bearer alice-key-0001", None)
    assert alice.user == "alice" and alice.admin and alice.key_id != "alice-key-0001"
    assert keys.authenticate(None, "carol-key-0003").user == "carol"
    assert keys.authenticate("bearer   bob-key-00002 ", None).admin is False


def test_keys_file_path_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "keys.txt").write_text("dave-key-0004=dave\n", encoding="utf-8")
    config = tmp_path / "sqlsage.toml"
    config.write_text('api_keys_file = "keys.txt"\n', encoding="utf-8")
    keys = ApiKeys.from_settings(load_settings(config))
    assert keys.authenticate("Bearer dave-key-0004", None).user == "dave"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("alice-key-0001", "API key entry #1 of SQLSAGE_API_KEYS is not 'key=user'."),
        ("alice-key-0001=alice,=bob", "API key entry #2 of SQLSAGE_API_KEYS is not 'key=user'."),
        ("short=eve", "API key for user 'eve' in SQLSAGE_API_KEYS is 5 characters long."),
    ],
)
def test_bad_key_entries_name_the_entry_not_the_key(value: str, message: str) -> None:
    with pytest.raises(SqlsageError) as caught:
        ApiKeys.from_settings(Settings(api_keys=value))
    assert caught.value.code == "invalid_config"
    assert caught.value.message == message
    assert "alice-key-0001" not in str(caught.value) and "short" not in caught.value.message


def test_bad_keys_file(tmp_path: Path) -> None:
    bad = tmp_path / "keys.txt"
    bad.write_text("ok-key-00001=ok\nnot a key line\n", encoding="utf-8")
    with pytest.raises(SqlsageError, match=r"entry on line 2 of '.*keys\.txt' is not"):
        ApiKeys.from_settings(Settings(api_keys_file=bad))
    with pytest.raises(SqlsageError, match="cannot be read"):
        ApiKeys.from_settings(Settings(api_keys_file=tmp_path / "missing.txt"))


def test_no_keys_is_single_user() -> None:
    keys = ApiKeys.from_settings(Settings())
    principal = keys.authenticate(None, None)
    assert not keys.enabled and principal.user == LOCAL_USER and principal.admin


@pytest.mark.parametrize(
    ("authorization", "api_key", "text"),
    [
        (None, None, "No API key was sent."),
        ("Bearer", None, "No API key was sent."),
        ("Basic alice-key-0001", None, "No API key was sent."),
        ("Bearer wrong-key-000", None, "The API key is not valid."),
        (None, "wrong-key-000", "The API key is not valid."),
    ],
)
def test_authentication_failures(authorization: str | None, api_key: str | None, text: str) -> None:
    keys = ApiKeys.from_settings(Settings(api_keys="alice-key-0001=alice"))
    with pytest.raises(SqlsageError) as caught:
        keys.authenticate(authorization, api_key)
    assert caught.value.code == "unauthorized" and caught.value.message == text
