"""The graph's shape, pinned by its mermaid drawing (graph.mmd, checked in beside this file).

A changed drawing means the graph changed: look at the diff, and if it is intended, rewrite
the file with
    .venv/bin/python -c "from graphs.text_to_sql import graph; \\
        print(graph.get_graph().draw_mermaid(), end='')" > tests/graphs/graph.mmd
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver

from graphs.text_to_sql import build_graph

SNAPSHOT = Path(__file__).with_name("graph.mmd")
REPO = Path(__file__).resolve().parents[2]


def test_drawing_matches_the_snapshot() -> None:
    drawing = build_graph(InMemorySaver()).get_graph().draw_mermaid()
    assert drawing == SNAPSHOT.read_text(encoding="utf-8")


def test_studio_loads_the_same_graph() -> None:
    target = json.loads((REPO / "langgraph.json").read_text())["graphs"]["text_to_sql"]
    path, name = target.split(":")
    module = importlib.import_module(path.removeprefix("./").removesuffix(".py").replace("/", "."))
    studio = getattr(module, name)
    assert studio.checkpointer is None  # Studio brings its own persistence
    assert studio.get_graph().draw_mermaid() == SNAPSHOT.read_text(encoding="utf-8")
