"""The text-to-SQL state machine: agent <-> tools, until the agent node ends the turn (an
answer, or an honest "could not answer" when a budget is used up). Each turn starts with
retrieval (a `retrieve` step inside the agent node's first call; see graphs/nodes.retrieve).

`graph` at the bottom is what `langgraph.json` (LangGraph Studio, `langgraph dev`) loads; the
faces compile their own with a checkpointer through build_graph(checkpointer=...).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agents.context import AgentContext
from graphs.nodes import after_model, call_model, call_tools
from graphs.state import State


def build_graph(checkpointer: Any = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the graph, with a checkpointer for per-session memory (None = no memory)."""
    builder = StateGraph(State, context_schema=AgentContext)
    builder.add_node("agent", call_model)
    builder.add_node("tools", call_tools)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", after_model, ["tools", "agent", END])
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer, name="text_to_sql")


graph = build_graph()
