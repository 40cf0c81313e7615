"""API keys: who is calling. Keys come from SQLSAGE_API_KEYS ("key1=alice,key2=bob") and/or a
keys file (one `key=user` per line, `#` comments); each maps to a user id. No keys configured
means single-user mode: every request is the local user (and the server binds loopback only)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from server.settings import Settings
from tools.errors import INVALID_CONFIG, UNAUTHORIZED, SqlsageError

LOCAL_USER = "local"
AUTH_HINT = (
    "Send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' with a key from SQLSAGE_API_KEYS."
)


@dataclass(frozen=True)
class Principal:
    """The caller: their user id, a stable non-secret id of their key, and admin rights."""

    user: str
    key_id: str
    admin: bool


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _parse_entries(entries: list[tuple[str, str]], source: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for where, entry in entries:
        key, sep, user = entry.partition("=")
        key, user = key.strip(), user.strip()
        if not sep or not key or not user:
            # Never echo the entry: it may hold a key.
            raise SqlsageError(
                INVALID_CONFIG,
                f"API key entry {where} of {source} is not 'key=user'.",
                hint="Write keys as 'key1=alice,key2=bob' (file: one 'key=user' per line).",
            )
        if len(key) < 8:
            raise SqlsageError(
                INVALID_CONFIG,
                f"API key for user '{user}' in {source} is {len(key)} characters long.",
                hint="Use keys of at least 8 characters, e.g. from `openssl rand -hex 16`.",
            )
        keys[_digest(key)] = user
    return keys


class ApiKeys:
    """Key digests -> user ids; admins may read the audit log."""

    def __init__(self, keys: dict[str, str], admins: set[str]) -> None:
        self._keys = keys
        self._admins = admins

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        """Parse SQLSAGE_API_KEYS and the keys file; errors name the entry, never the key."""
        parts = [p for p in settings.api_keys.split(",") if p.strip()]
        keys = _parse_entries([(f"#{i + 1}", p) for i, p in enumerate(parts)], "SQLSAGE_API_KEYS")
        if settings.api_keys_file is not None:
            keys.update(_read_keys_file(Path(settings.api_keys_file)))
        return cls(keys, set(settings.admin_user_list()))

    @property
    def enabled(self) -> bool:
        """True when at least one key is configured (multi-user mode)."""
        return bool(self._keys)

    @property
    def users(self) -> set[str]:
        """Every configured user id."""
        return set(self._keys.values())

    def authenticate(self, authorization: str | None, x_api_key: str | None) -> Principal:
        """The caller of a request with these headers; UNAUTHORIZED when the key is missing
        or unknown (in single-user mode everyone is the local admin)."""
        if not self._keys:
            return Principal(LOCAL_USER, LOCAL_USER, admin=True)
        key = (x_api_key or "").strip()
        if not key and authorization:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() == "bearer":
                key = value.strip()
        if not key:
            raise SqlsageError(UNAUTHORIZED, "No API key was sent.", hint=AUTH_HINT)
        digest = _digest(key)
        user = self._keys.get(digest)
        if user is None:
            raise SqlsageError(UNAUTHORIZED, "The API key is not valid.", hint=AUTH_HINT)
        return Principal(user, digest[:16], admin=user in self._admins)


def _read_keys_file(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SqlsageError(
            INVALID_CONFIG,
            f"API keys file '{path}' cannot be read: {exc}.",
            hint="Fix api_keys_file in sqlsage.toml (one 'key=user' per line).",
        ) from None
    entries = [
        (f"on line {n}", line)
        for n, line in enumerate(lines, 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return _parse_entries(entries, f"'{path}'")
