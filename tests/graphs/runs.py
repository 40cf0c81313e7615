"""Helpers for driving whole turns: ask, look at the event stream, read the model's inputs."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import sqlite3
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from langchain_core.messages import BaseMessage, ToolMessage

from graphs.events import Event
from graphs.text_to_sql import build_graph
from graphs.turns import Turn, TurnRunner
from memory.checkpointer import open_checkpointer

SAMPLE_TABLES = ("customers", "orders", "order_items", "products")
FAKE_OPENAI = Path(__file__).resolve().parents[1] / "agents" / "fake_openai.py"


def fake_openai() -> ModuleType:
    """tests/agents/fake_openai.py, loaded by path: under pytest the name `agents` may be
    either tests/agents or the real package, depending on which was imported first."""
    name = "sqlsage_tests_fake_openai"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, FAKE_OPENAI)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[name]


async def ask(runner: TurnRunner, question: str, **turn: Any) -> list[Event]:
    """Every event of one turn."""
    return [event async for event in runner.stream(Turn(question, **turn))]


async def resume(runner: TurnRunner, session_id: str) -> list[Event]:
    """Every event of a resumed turn."""
    return [event async for event in runner.resume(session_id)]


def shape(events: list[Event]) -> list[tuple[str, ...]]:
    """The stream's outline: (event,), (step, name, status), or (done, status)."""
    out: list[tuple[str, ...]] = []
    for event in events:
        if event.event == "step":
            out.append(("step", event.data["name"], event.data["status"]))
        elif event.event == "done":
            out.append(("done", event.data["status"]))
        else:
            out.append((event.event,))
    return out


def of_type(events: list[Event], kind: str) -> list[Event]:
    """The events of one type, in order."""
    return [event for event in events if event.event == kind]


def tool_steps(events: list[Event]) -> list[str]:
    """Names of the tools that started, in order."""
    return [
        e.data["name"]
        for e in of_type(events, "step")
        if e.data["status"] == "start" and e.data["name"] not in ("retrieve", "agent")
    ]


def tool_results(sent: list[BaseMessage]) -> list[ToolMessage]:
    """The tool messages in one model input."""
    return [m for m in sent if isinstance(m, ToolMessage)]


def transcript(sent: list[BaseMessage]) -> list[tuple[str, str]]:
    """(type, text) of one model input, the system prompt left out."""
    return [(m.type, str(m.content)) for m in sent if m.type != "system"]


async def checkpoint_state(url: str | None, data_dir: Path, session_id: str) -> Any:
    """The session's latest checkpoint, read through a checkpointer of its own."""
    async with open_checkpointer(url, data_dir=data_dir) as saver:
        return await build_graph(saver).aget_state({"configurable": {"thread_id": session_id}})


def sqlite_fingerprint(path: Path) -> tuple[str, dict[str, int]]:
    """The file's sha256 and the row counts of the main sample tables."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in SAMPLE_TABLES}
    finally:
        conn.close()
    return digest, counts


def sample_rows(path: Path, sql: str) -> list[list[Any]]:
    """Rows straight from the sample file, to check what the graph reported."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [list(row) for row in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def run(coro: Any) -> Any:
    """Run a coroutine on a fresh loop (no pytest-asyncio in this project)."""
    return asyncio.run(coro)
