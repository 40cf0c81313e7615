"""The agent's runtime for one process: checkpointer, session catalog + results store, graph
and turn runner, opened together from settings (the composition root for the faces)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from agents.context import Services
from graphs.text_to_sql import build_graph
from graphs.turns import TurnRunner
from memory.checkpointer import open_checkpointer, pool_of
from memory.sessions import SessionStore
from server.resources import Resources


@asynccontextmanager
async def open_runner(
    resources: Resources,
    *,
    model_factory: Callable[[str], Any] | None = None,
    checkpoint_url: str | None = None,
) -> AsyncIterator[TurnRunner]:
    """A TurnRunner with per-session memory (SQLITE file by default, PostgreSQL when
    SQLSAGE_CHECKPOINT_URL says so) and the session catalog in the same place."""
    settings = resources.settings
    url = checkpoint_url if checkpoint_url is not None else settings.checkpoint_url
    async with open_checkpointer(url, data_dir=settings.data_dir) as saver:
        store = SessionStore(url, data_dir=settings.data_dir, pool=pool_of(saver))
        try:
            yield TurnRunner(
                services=Services(resources=resources, results=store.results),
                graph=build_graph(saver),
                sessions=store,
                model_factory=model_factory,
            )
        finally:
            store.close()
