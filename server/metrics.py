"""Prometheus metrics of one server process, in its own registry (tests run several apps)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TOOLS = ("schema_lookup", "semantic_search", "validate_sql", "run_sql", "build_chart", "retrieve")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Request counts and latency per route, turns, tool calls, tokens, cost, errors, streams."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "sqlsage_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "sqlsage_http_request_seconds",
            "HTTP request latency (to the response start for streams)",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.turns = Counter("sqlsage_turns", "Finished turns", ["status"], registry=r)
        self.turn_seconds = Histogram(
            "sqlsage_turn_seconds", "Turn wall time", buckets=LATENCY_BUCKETS, registry=r
        )
        self.tool_calls = Counter(
            "sqlsage_tool_calls", "Tool calls", ["tool", "outcome"], registry=r
        )
        self.tool_seconds = Histogram(
            "sqlsage_tool_seconds",
            "Tool call latency",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("sqlsage_model_tokens", "Model tokens", ["kind"], registry=r)
        self.cost = Counter("sqlsage_model_cost_usd", "Model cost in USD", registry=r)
        self.errors = Counter("sqlsage_errors", "Errors by code", ["code"], registry=r)
        self.active_streams = Gauge("sqlsage_active_streams", "Open SSE streams", registry=r)
        self.running_turns = Gauge("sqlsage_running_turns", "Turns in progress", registry=r)
        self.cache = Counter(
            "sqlsage_cache_lookups", "Result cache lookups", ["result"], registry=r
        )

    def observe_event(self, event: str, data: dict[str, Any]) -> None:
        """Count what a turn event says: tool calls and their latency, errors, usage."""
        if event == "step" and data.get("status") == "end":
            name = str(data.get("name"))
            if name in TOOLS:
                failed = str(data.get("summary") or "").startswith("error")
                self.tool_calls.labels(name, "error" if failed else "ok").inc()
                self.tool_seconds.labels(name).observe(float(data.get("elapsed_ms") or 0) / 1000)
        elif event == "error":
            self.errors.labels(str(data.get("code"))).inc()
        elif event == "done":
            self.turns.labels(str(data.get("status"))).inc()
            self.turn_seconds.observe(float(data.get("elapsed_ms") or 0) / 1000)
            usage = data.get("usage") or {}
            self.tokens.labels("input").inc(int(usage.get("input_tokens") or 0))
            self.tokens.labels("output").inc(int(usage.get("output_tokens") or 0))
            self.cost.inc(float(usage.get("cost_usd") or 0.0))

    def observe_cache(self, hit: bool) -> None:
        """One result-cache lookup."""
        self.cache.labels("hit" if hit else "miss").inc()

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
