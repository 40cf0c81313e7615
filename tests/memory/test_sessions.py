"""SessionStore and ResultStore on a real SQLite file and on PostgreSQL: numbering, titles,
ordering, owner isolation, validation, deletion and concurrent writers."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from service_dbs import HOST, PG_PORT, postgres_available, require_or_skip

from memory.checkpointer import open_checkpointer, pool_of
from memory.sessions import SessionStore, title_from_question
from tools.errors import (
    DATABASE_UNREACHABLE,
    INVALID_ARGUMENT,
    INVALID_CONFIG,
    NOT_FOUND,
    SqlsageError,
)

PG_URL = f"postgresql://postgres@{HOST}:{PG_PORT}/test"
# Every owner these tests create starts with this, so PostgreSQL rows can be cleaned up exactly.
RUN = f"pytest-{uuid.uuid4().hex[:12]}"

Owner = Callable[[], str]


def _cleanup_postgres() -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(
            "DELETE FROM sqlsage_results WHERE session_id IN "
            "(SELECT session_id FROM sqlsage_sessions WHERE owner LIKE %s)",
            (f"{RUN}%",),
        )
        conn.execute("DELETE FROM sqlsage_sessions WHERE owner LIKE %s", (f"{RUN}%",))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The store URL: None (SQLite file in the data dir) or the PostgreSQL test database."""
    if request.param == "sqlite":
        yield None
        return
    require_or_skip(postgres_available(), "PostgreSQL")
    yield PG_URL
    _cleanup_postgres()


@pytest.fixture()
def store(url: str | None, tmp_path: Path) -> Iterator[SessionStore]:
    sessions = SessionStore(url, data_dir=tmp_path)
    yield sessions
    sessions.close()


@pytest.fixture()
def owner() -> Owner:
    """A factory of owner names unique to this run (shared PostgreSQL tables hold other runs)."""
    return lambda: f"{RUN}-{uuid.uuid4().hex[:8]}"


def _code(call: Callable[[], object]) -> SqlsageError:
    with pytest.raises(SqlsageError) as info:
        call()
    return info.value


# ---- sessions ----------------------------------------------------------------------------
def test_create_and_get(store: SessionStore, owner: Owner) -> None:
    alice = owner()
    info = store.create(owner=alice, db="sales", model="builtin")
    assert len(info.session_id) == 32 and int(info.session_id, 16) >= 0
    assert (info.owner, info.title, info.db, info.model) == (alice, "", "sales", "builtin")
    assert (info.turns, info.message_count) == (0, 0)
    assert info.created_at.tzinfo == UTC and info.updated_at == info.created_at
    assert store.get(info.session_id) == info
    assert store.get(info.session_id, owner=alice) == info

    for call in (
        lambda: store.get(info.session_id, owner=owner()),
        lambda: store.get("no-such-session"),
    ):
        error = _code(call)
        assert error.code == NOT_FOUND and error.hint
    assert "'no-such-session'" in _code(lambda: store.get("no-such-session")).message


def test_given_ids_are_validated_and_unique(store: SessionStore, owner: Owner) -> None:
    sid = f"chat-{uuid.uuid4().hex}"
    assert store.create(owner=owner(), session_id=sid).session_id == sid
    taken = _code(lambda: store.create(owner=owner(), session_id=sid))
    assert taken.code == INVALID_ARGUMENT and sid in taken.message
    for bad in ("", "a:b", "a/b", "-lead", "x" * 65, "sp ace"):
        error = _code(partial(store.create, owner=owner(), session_id=bad))
        assert error.code == INVALID_ARGUMENT and f"'{bad}'" in error.message and error.hint


def test_get_or_create_never_hands_over_another_owners_session(
    store: SessionStore, owner: Owner
) -> None:
    alice, bob = owner(), owner()
    sid = uuid.uuid4().hex
    created = store.get_or_create(sid, owner=alice, db="sample")
    assert created.db == "sample" and created.owner == alice
    assert store.get_or_create(sid, owner=alice, db="other") == created
    assert _code(lambda: store.get_or_create(sid, owner=bob)).code == NOT_FOUND
    assert _code(lambda: store.get_or_create("bad:id", owner=bob)).code == INVALID_ARGUMENT


def test_start_turn_counts_and_titles_from_the_first_question(
    store: SessionStore, owner: Owner
) -> None:
    info = store.create(owner=owner())
    sid = info.session_id
    assert store.start_turn(sid, "  Top 5   customers\nby revenue? ") == 1
    store.finish_turn(sid, messages_added=4)
    assert store.start_turn(sid, "And by country?") == 2
    store.finish_turn(sid, messages_added=3)
    after = store.get(sid)
    assert after.title == "Top 5 customers by revenue?"
    assert (after.turns, after.message_count) == (2, 7)
    assert after.updated_at > info.updated_at and after.created_at == info.created_at

    assert _code(lambda: store.start_turn("missing", "q")).code == NOT_FOUND
    assert _code(lambda: store.finish_turn("missing", messages_added=1)).code == NOT_FOUND
    negative = _code(lambda: store.finish_turn(sid, messages_added=-1))
    assert negative.code == INVALID_ARGUMENT and "-1" in negative.message


def test_begin_turn_creates_counts_titles_and_guards_owners(
    store: SessionStore, owner: Owner
) -> None:
    alice, bob = owner(), owner()
    sid = uuid.uuid4().hex
    assert store.begin_turn(sid, "Revenue by year?", owner=alice, db="sample", model="builtin") == 1
    assert store.begin_turn(sid, "and 2023?", owner=alice, model="openai/gpt-4o-mini") == 2
    info = store.get(sid, owner=alice)
    assert (info.title, info.turns, info.db) == ("Revenue by year?", 2, "sample")
    assert info.model == "openai/gpt-4o-mini"  # the latest turn's model
    stolen = _code(lambda: store.begin_turn(sid, "mine now", owner=bob))
    assert stolen.code == NOT_FOUND and store.get(sid).turns == 2 and store.get(sid).owner == alice
    assert _code(lambda: store.begin_turn("bad:id", "q", owner=alice)).code == INVALID_ARGUMENT


def test_long_first_question_is_trimmed_on_a_word_boundary(
    store: SessionStore, owner: Owner
) -> None:
    question = (
        "Which customers in Germany and France spent more than the average customer "
        "on rock and metal tracks during 2012?"
    )
    sid = store.create(owner=owner()).session_id
    store.start_turn(sid, question)
    title = store.get(sid).title
    assert title == "Which customers in Germany and France spent more than the…"
    assert len(title) <= 60 and question.startswith(title[:-1] + " ")


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("", ""),
        ("How many tracks?", "How many tracks?"),
        ("x" * 60, "x" * 60),
        ("y" * 80, "y" * 59 + "…"),
        ("word " * 13 + "end", "word " * 11 + "word…"),
        ("a" * 40 + ", " + "b" * 40, "a" * 40 + "…"),
    ],
)
def test_title_from_question(question: str, title: str) -> None:
    assert title_from_question(question) == title


def test_list_is_newest_first_and_per_owner(store: SessionStore, owner: Owner) -> None:
    alice, bob = owner(), owner()
    first = store.create(owner=alice)
    second = store.create(owner=alice)
    third = store.create(owner=alice)
    theirs = store.create(owner=bob)
    store.start_turn(first.session_id, "bring me to the top")
    ids = [s.session_id for s in store.list(owner=alice)]
    assert ids == [first.session_id, third.session_id, second.session_id]
    assert [s.session_id for s in store.list(owner=alice, limit=1, offset=1)] == [third.session_id]
    assert [s.session_id for s in store.list(owner=bob)] == [theirs.session_id]
    assert store.list(owner=owner()) == []
    every = {s.session_id for s in store.list(limit=500)}
    assert {first.session_id, theirs.session_id} <= every
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}):
        assert _code(partial(store.list, owner=alice, **bad)).code == INVALID_ARGUMENT


def test_rename_validates_and_respects_owners(store: SessionStore, owner: Owner) -> None:
    alice = owner()
    info = store.create(owner=alice)
    renamed = store.rename(info.session_id, "  Q3   revenue\n", owner=alice)
    assert renamed.title == "Q3 revenue" and store.get(info.session_id).title == "Q3 revenue"
    assert store.rename(info.session_id, "t" * 200).title == "t" * 200
    for bad in ("", "   \n", "t" * 201):
        error = _code(partial(store.rename, info.session_id, bad))
        assert error.code == INVALID_ARGUMENT and "200" in (error.hint or "")
    assert _code(lambda: store.rename(info.session_id, "x", owner=owner())).code == NOT_FOUND
    assert _code(lambda: store.rename("missing", "x")).code == NOT_FOUND
    # A title set by hand is not replaced by the first question.
    fresh = store.create(owner=alice)
    store.rename(fresh.session_id, "Mine")
    store.start_turn(fresh.session_id, "What is the total?")
    assert store.get(fresh.session_id).title == "Mine"


def test_delete_removes_the_session_and_its_results(store: SessionStore, owner: Owner) -> None:
    alice = owner()
    doomed, kept = store.create(owner=alice), store.create(owner=alice)
    ref = store.results.put(
        doomed.session_id, 1, sql="SELECT 1", columns=[], rows=[[1]], row_count=1, truncated=False
    )
    kept_ref = store.results.put(
        kept.session_id, 1, sql="SELECT 2", columns=[], rows=[[2]], row_count=1, truncated=False
    )
    assert _code(lambda: store.delete(doomed.session_id, owner=owner())).code == NOT_FOUND
    assert store.get(doomed.session_id).session_id == doomed.session_id

    store.delete(doomed.session_id, owner=alice)
    assert _code(lambda: store.get(doomed.session_id)).code == NOT_FOUND
    assert _code(lambda: store.results.get(ref)).code == NOT_FOUND
    assert store.results.for_turn(doomed.session_id, 1) == []
    assert _code(lambda: store.delete(doomed.session_id)).code == NOT_FOUND
    assert store.results.get(kept_ref).rows == [[2]]


# ---- results -----------------------------------------------------------------------------
def test_results_round_trip_with_refs_per_turn(store: SessionStore, owner: Owner) -> None:
    alice = owner()
    sid = store.create(owner=alice).session_id
    results = store.results
    columns = [{"name": "city", "type": "text"}, {"name": "total", "type": "number"}]
    rows: list[list[Any]] = [["Zürich", 12.5], ["東京", None], ['quote " and \\', -3]]
    first = results.put(
        sid,
        1,
        sql="SELECT city, total FROM t",
        columns=columns,
        rows=rows,
        row_count=3,
        truncated=True,
    )
    second = results.put(sid, 1, sql="SELECT 2", columns=[], rows=[], row_count=0, truncated=False)
    later = results.put(sid, 2, sql="SELECT 3", columns=[], rows=[], row_count=0, truncated=False)
    assert (first, second, later) == (f"{sid}:1:1", f"{sid}:1:2", f"{sid}:2:1")

    stored = results.get(first, owner=alice)
    assert (stored.ref, stored.session_id, stored.turn) == (first, sid, 1)
    assert (stored.sql, stored.columns, stored.rows) == ("SELECT city, total FROM t", columns, rows)
    assert (stored.row_count, stored.truncated) == (3, True)
    assert [r.ref for r in results.for_turn(sid, 1)] == [first, second]
    assert [r.ref for r in results.for_turn(sid, 2)] == [later]
    assert results.for_turn(sid, 3) == []
    assert _code(lambda: results.get(first, owner=owner())).code == NOT_FOUND

    missing = _code(
        lambda: results.put("nope", 1, sql="", columns=[], rows=[], row_count=0, truncated=False)
    )
    assert missing.code == NOT_FOUND and "'nope'" in missing.message
    zero = _code(
        lambda: results.put(sid, 0, sql="", columns=[], rows=[], row_count=0, truncated=False)
    )
    assert zero.code == INVALID_ARGUMENT


@pytest.mark.parametrize("ref", ["", "abc", "a:b:c", "x:1", "x:1:-2", "x:one:1", "x:1:2:3"])
def test_malformed_or_unknown_refs_are_not_found(store: SessionStore, ref: str) -> None:
    error = _code(lambda: store.results.get(ref))
    assert error.code == NOT_FOUND and f"'{ref}'" in error.message and error.hint


# ---- concurrency and files ---------------------------------------------------------------
def test_concurrent_turns_and_results_are_distinct(
    store: SessionStore, url: str | None, tmp_path: Path, owner: Owner
) -> None:
    sid = store.create(owner=owner()).session_id
    # A second store on the same database stands in for a second process or replica.
    other = SessionStore(url, data_dir=tmp_path)
    stores = [store, other]
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            turns = list(
                pool.map(lambda i: stores[i % 2].start_turn(sid, f"question {i}"), range(40))
            )
            refs = list(
                pool.map(
                    lambda i: stores[i % 2].results.put(
                        sid,
                        7,
                        sql=f"SELECT {i}",
                        columns=[],
                        rows=[[i]],
                        row_count=1,
                        truncated=False,
                    ),
                    range(24),
                )
            )
    finally:
        other.close()
    assert sorted(turns) == list(range(1, 41))
    assert sorted(int(ref.rsplit(":", 1)[1]) for ref in refs) == list(range(1, 25))
    assert store.get(sid).turns == 40
    stored = store.results.for_turn(sid, 7)
    assert sorted(r.rows[0][0] for r in stored) == list(range(24))


def test_default_store_is_a_shared_wal_sqlite_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = SessionStore(None, data_dir=data_dir)
    sid = first.create(owner="local").session_id
    first.start_turn(sid, "How many albums?")
    path = data_dir / "sessions.sqlite"
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    second = SessionStore(f"sqlite:///{tmp_path / 'checkpoints.db'}", data_dir=data_dir)
    try:
        assert second.get(sid).title == "How many albums?"
        assert second.start_turn(sid, "again") == 2
        assert first.get(sid).turns == 2
    finally:
        first.close()
        second.close()


def test_memory_store_writes_nothing(tmp_path: Path) -> None:
    store = SessionStore("memory", data_dir=tmp_path)
    sid = store.create().session_id
    assert store.start_turn(sid, "q") == 1
    store.results.put(sid, 1, sql="SELECT 1", columns=[], rows=[], row_count=0, truncated=False)
    assert len(store.results.for_turn(sid, 1)) == 1
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_bad_and_unreachable_urls(tmp_path: Path) -> None:
    bad = _code(lambda: SessionStore("mysql://root:s3cret@h/db", data_dir=tmp_path))
    assert bad.code == INVALID_CONFIG and "s3cret" not in str(bad) and "@h/db" in bad.message
    started = time.monotonic()
    down = _code(lambda: SessionStore(f"postgresql://u:hunter2@{HOST}:1/test", data_dir=tmp_path))
    assert time.monotonic() - started < 10
    assert down.code == DATABASE_UNREACHABLE and "hunter2" not in str(down)
    assert f"{HOST}:1/test" in down.message and down.hint


# ---- the async path a turn takes ------------------------------------------------------------
async def _async_turns(store: SessionStore, sid: str, alice: str, bob: str) -> list[str]:
    assert await store.abegin_turn(sid, "Revenue by year?", owner=alice, db="sample") == 1
    assert await store.abegin_turn(sid, "and 2023?", owner=alice, model="builtin") == 2
    with pytest.raises(SqlsageError) as stolen:
        await store.abegin_turn(sid, "mine now", owner=bob)
    assert stolen.value.code == NOT_FOUND
    await store.afinish_turn(sid, messages_added=5)
    with pytest.raises(SqlsageError) as missing:
        await store.afinish_turn("missing", messages_added=1)
    assert missing.value.code == NOT_FOUND
    put = partial(store.results.aput, sql="SELECT 1", columns=[], row_count=1, truncated=False)
    with pytest.raises(SqlsageError) as no_session:
        await put("missing", 1, rows=[[1]])
    assert no_session.value.code == NOT_FOUND
    # Concurrent writers of one turn: distinct refs, numbered 1..n.
    return list(await asyncio.gather(*(put(sid, 2, rows=[[i]]) for i in range(12))))


def test_async_methods_match_the_sync_ones(url: str | None, tmp_path: Path, owner: Owner) -> None:
    """abegin_turn / afinish_turn / aput: on PostgreSQL on the checkpointer's pool (no worker
    thread), on SQLite through the sync methods; same results and errors either way."""

    async def run() -> tuple[list[str], Any]:
        async with open_checkpointer(url, data_dir=tmp_path) as saver:
            assert (pool_of(saver) is None) == (url is None)
            store = SessionStore(url, data_dir=tmp_path, pool=pool_of(saver))
            try:
                sid, alice = uuid.uuid4().hex, owner()
                refs = await _async_turns(store, sid, alice, owner())
                info = store.get(sid)
                assert store.results.get(refs[0]).sql == "SELECT 1"
                return refs, info
            finally:
                store.close()

    refs, info = asyncio.run(run())
    assert sorted(int(ref.rsplit(":", 1)[1]) for ref in refs) == list(range(1, 13))
    assert (info.turns, info.message_count, info.db, info.model) == (2, 5, "sample", "builtin")
    assert info.title == "Revenue by year?"
