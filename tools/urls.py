"""Telling a database URL from a configured name, without importing the database layer."""

from __future__ import annotations

__all__ = ["looks_like_url"]


def looks_like_url(value: str) -> bool:
    """Whether a --db value is a URL rather than a configured name."""
    return "://" in value
