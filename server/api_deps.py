"""Dependencies every API route shares: the app's state and the authenticated, rate-limited caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server import request_context
from server.app_state import AppState
from server.auth import Principal
from server.chat_service import RetryLater
from tools.errors import RATE_LIMITED


async def app_state(request: Request) -> AppState:
    """The process's shared objects (async: FastAPI runs a plain def dependency in a worker
    thread, a thread hop per request for an attribute read)."""
    state: AppState = request.app.state.sqlsage
    return state


async def caller(request: Request) -> Principal:
    """Who is asking (401 without a valid key), after taking a token from their bucket (429).
    Async so the user id it sets stays in the request's context (logs, audit)."""
    state: AppState = request.app.state.sqlsage
    principal = state.keys.authenticate(
        request.headers.get("authorization"), request.headers.get("x-api-key")
    )
    request_context.user_id.set(principal.user)
    wait = await state.limiter.take(principal.key_id)
    if wait > 0:
        raise RetryLater(
            RATE_LIMITED,
            f"Too many requests for user '{principal.user}': the limit is "
            f"{state.settings.rate_limit_per_minute:g} per minute "
            f"(bursts of {state.settings.rate_limit_burst}).",
            hint=f"Retry after {wait:.1f} s.",
            retry_after_s=wait,
        )
    return principal


State = Annotated[AppState, Depends(app_state)]
Caller = Annotated[Principal, Depends(caller)]
