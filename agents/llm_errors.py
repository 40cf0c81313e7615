"""Sort litellm failures into retryable or not, and turn the last ones into one SqlsageError."""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass
from typing import Literal

from agents.llm_spec import key_variable
from tools.errors import MODEL_UNAVAILABLE, RATE_LIMITED, SqlsageError

Kind = Literal["rate_limited", "auth", "timeout", "connection", "server", "invalid", "rejected"]

RETRYABLE: frozenset[Kind] = frozenset(
    {"rate_limited", "timeout", "connection", "server", "invalid"}
)
MAX_RETRY_AFTER_S = 30.0  # a provider asking for minutes is as good as down for an interactive ask

INVALID_RESPONSE = "provider returned an invalid response"


class InvalidResponse(Exception):
    """The provider answered 200 with something that is not a chat completion."""


@dataclass(frozen=True)
class Failure:
    """One failed attempt: which model, what kind, a short secret-free detail."""

    model: str
    kind: Kind
    detail: str
    status: int | None = None
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        """Whether another attempt at the same model may succeed."""
        return self.kind in RETRYABLE

    def brief(self) -> str:
        """A few words for the user: 'HTTP 500: upstream crashed'."""
        return self.detail if self.status is None else f"HTTP {self.status}: {self.detail}"


def classify(exc: BaseException, model: str, timeout_s: float) -> Failure:
    """Sort a litellm/openai exception (or InvalidResponse) into a Failure."""
    import openai  # installed with litellm; imported here for the same start-up reason

    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    if isinstance(exc, InvalidResponse) or (status in (None, 500) and _is_invalid_body(exc)):
        return Failure(model, "invalid", INVALID_RESPONSE)
    if isinstance(exc, openai.APITimeoutError):  # before APIConnectionError: it subclasses it
        return Failure(model, "timeout", f"timed out after {timeout_s:g} s")
    if isinstance(exc, openai.APIConnectionError):
        return Failure(model, "connection", f"could not connect ({_detail(exc)})")
    if isinstance(exc, openai.RateLimitError) or status == 429:
        return Failure(model, "rate_limited", "rate limited", 429, _retry_after(exc))
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        # The provider's text may echo part of the key; say only what happened.
        return Failure(model, "auth", "the provider rejected the API key", status)
    if status is not None and (status >= 500 or status == 408):
        return Failure(model, "server", _detail(exc), status)
    return Failure(model, "rejected", _detail(exc), status)


def retry_delay(attempt: int, backoff_s: float, retry_after: float | None) -> float:
    """Exponential backoff with jitter, at least what Retry-After asked for (capped)."""
    # Random jitter (up to 2x the step) keeps parallel clients from retrying in lockstep.
    delay = backoff_s * (2**attempt) * (1 + random.random())
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
    return delay


def exhausted(failures: list[Failure], attempts: dict[str, int]) -> SqlsageError:
    """The error raised when every model failed: each model's last failure, briefly."""
    last: dict[str, Failure] = {}
    for failure in failures:
        last[failure.model] = failure
    finals = list(last.values())
    if len(finals) == 1:
        only = finals[0]
        message = (
            f"Model '{only.model}' did not answer after {_times(attempts.get(only.model, 1))}: "
            f"{only.brief()}."
        )
    else:
        parts = [f"'{f.model}' ({_times(attempts.get(f.model, 1))}: {f.brief()})" for f in finals]
        message = f"No model answered: {'; '.join(parts)}."
    if all(f.kind == "rate_limited" for f in finals):
        return SqlsageError(
            RATE_LIMITED,
            message,
            hint="The provider kept answering 429 Too Many Requests; wait a minute and retry, "
            "or run with --model builtin.",
        )
    return SqlsageError(MODEL_UNAVAILABLE, message, hint=_hint(finals))


def mid_stream(failure: Failure) -> SqlsageError:
    """A failure after text was already streamed: it cannot be retried without repeating it."""
    return SqlsageError(
        RATE_LIMITED if failure.kind == "rate_limited" else MODEL_UNAVAILABLE,
        f"Model '{failure.model}' failed mid-answer: {failure.brief()}.",
        hint="Ask again; if it keeps happening, try another model or --model builtin.",
    )


def scrub(text: str) -> str:
    """Remove anything that looks like a credential from provider text."""
    for name, value in os.environ.items():
        if len(value) >= 8 and re.search(r"KEY|TOKEN|SECRET|PASSWORD", name) and value in text:
            text = text.replace(value, "***")
    text = re.sub(r"\b(sk|pk|gsk|xai)-[A-Za-z0-9_\-*]{6,}", "***", text)
    return re.sub(r"(?i)bearer\s+\S+", "Bearer ***", text)


def _hint(finals: list[Failure]) -> str:
    auth = [f for f in finals if f.kind == "auth"]
    if auth:
        names = ", ".join(dict.fromkeys(key_variable(f.model) for f in auth))
        return f"Check {names}: the provider refused it. Or run with --model builtin."
    if any(f.kind == "invalid" for f in finals):
        return (
            "Check that the api_base URL is an OpenAI-compatible /v1 endpoint, "
            "or run with --model builtin."
        )
    if any(f.kind == "rejected" for f in finals):
        return "Check the model name and its settings, or run with --model builtin."
    return "Check the network and the provider's status, or run with --model builtin."


def _detail(exc: BaseException) -> str:
    """The provider's own words, without litellm's 'litellm.X: X: OpenAIException - ' prefixes."""
    text = str(getattr(exc, "message", None) or exc)
    text = text.split(" - ", 1)[-1].strip().splitlines()[0] if text.strip() else type(exc).__name__
    text = scrub(text)
    return text if len(text) <= 160 else text[:157] + "..."


def _is_invalid_body(exc: BaseException) -> bool:
    """litellm reports a non-JSON or choice-less 200 as a 500; its cause chain tells them apart."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, json.JSONDecodeError) or "no 'choices'" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or getattr(exc, "litellm_response_headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP-date: fall back to our own backoff
        return None


def _times(n: int) -> str:
    return "1 attempt" if n == 1 else f"{n} attempts"
