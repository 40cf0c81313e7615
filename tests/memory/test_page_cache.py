"""The in-process result store: pages by ref, and a finished session's pages dropped."""

from __future__ import annotations

import pytest

from memory.page_cache import InMemoryResults
from tools.errors import SqlsageError


def _put(store: InMemoryResults, session: str, turn: int = 1) -> str:
    return store.put(
        session, turn, sql="SELECT 1", columns=[], rows=[[1]], row_count=1, truncated=False
    )


def test_forget_drops_only_that_sessions_pages_and_numbering() -> None:
    store = InMemoryResults()
    kept = _put(store, "s1")
    gone = [_put(store, "s10"), _put(store, "s10", turn=2)]
    store.forget("s10")
    for ref in gone:
        with pytest.raises(SqlsageError, match="No stored result"):
            store.get(ref)
    assert store.get(kept).rows == [[1]]  # "s1" is a prefix of "s10", yet untouched
    assert _put(store, "s10") == "s10:1:1"  # numbering starts over
    store.forget("never-seen")  # nothing to drop: no error
