"""Token and cost accounting, summed per turn (state) and per session (the session catalog)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage

EMPTY: dict[str, Any] = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "model_calls": 0}


def add_usage(total: dict[str, Any], message: BaseMessage) -> dict[str, Any]:
    """total plus one model response's tokens and cost (a new dict)."""
    usage = getattr(message, "usage_metadata", None) or {}
    meta = getattr(message, "response_metadata", None) or {}
    base = {**EMPTY, **total}
    return {
        "input_tokens": base["input_tokens"] + int(usage.get("input_tokens", 0) or 0),
        "output_tokens": base["output_tokens"] + int(usage.get("output_tokens", 0) or 0),
        "cost_usd": round(base["cost_usd"] + float(meta.get("cost_usd", 0.0) or 0.0), 8),
        "model_calls": base["model_calls"] + 1,
    }
