"""Check a litellm model string before any call: a known provider, a model name, and its key."""

from __future__ import annotations

import difflib
from types import ModuleType

from agents.litellm_import import litellm_module
from tools.errors import MODEL_UNAVAILABLE, SqlsageError

ACCEPTED_FORMS = (
    "Use 'provider/model', e.g. 'openai/gpt-4o-mini', 'anthropic/claude-sonnet-4-5', "
    "'ollama/llama3.1', 'groq/llama-3.1-8b-instant', 'deepseek/deepseek-reasoner', "
    "'azure/<deployment>', 'hosted_vllm/<model>' (with an api_base), or run with --model builtin."
)

# Local servers: litellm lists OLLAMA_API_BASE as "missing", but it has a default, and no key.
KEYLESS_PROVIDERS = frozenset(
    {"ollama", "ollama_chat", "hosted_vllm", "lm_studio", "llamafile", "vllm", "xinference"}
)

# Providers whose listed variables are alternatives (any one will do), not all required.
EITHER_KEY_PROVIDERS = frozenset({"gemini"})


def provider_of(spec: str) -> str:
    """The provider part of a 'provider/model' string."""
    return spec.split("/", 1)[0]


def check_spec(spec: str, *, needs_key: bool = True) -> str:
    """Return the stripped spec if it names a known provider and model, and its key is set."""
    litellm = litellm_module()
    spec = spec.strip()
    provider, slash, name = spec.partition("/")
    providers = {str(getattr(p, "value", p)) for p in litellm.provider_list}
    if not slash or not provider or not name.strip():
        raise SqlsageError(
            MODEL_UNAVAILABLE,
            f"Model '{spec}' is not a 'provider/model' string.",
            hint=_bare_name_hint(litellm, spec) + ACCEPTED_FORMS,
        )
    if provider not in providers:
        close = difflib.get_close_matches(provider, sorted(providers), n=1)
        maybe = f"Did you mean '{close[0]}/{name}'? " if close else ""
        raise SqlsageError(
            MODEL_UNAVAILABLE,
            f"Unknown provider '{provider}' in model '{spec}'.",
            hint=maybe + ACCEPTED_FORMS,
        )
    if needs_key and provider not in KEYLESS_PROVIDERS:
        missing = missing_keys(spec)
        if missing:
            joiner = " or " if provider in EITHER_KEY_PROVIDERS else " and "
            names = (
                ", ".join(missing[:-1]) + joiner + missing[-1] if len(missing) > 1 else missing[0]
            )
            raise SqlsageError(
                MODEL_UNAVAILABLE,
                f"No API key for {provider}: set {names}, or run with --model builtin.",
                hint=f"Keys are read from the environment only: export {missing[-1]}=... "
                "in the shell that runs sqlsage.",
            )
    return spec


def missing_keys(spec: str) -> list[str]:
    """The environment variables litellm needs for this model and cannot find."""
    litellm = litellm_module()
    return list(litellm.validate_environment(model=spec).get("missing_keys") or [])


def key_variable(spec: str) -> str:
    """The variable that holds this provider's key, for hints (litellm's naming convention)."""
    provider = provider_of(spec)
    return {"gemini": "GEMINI_API_KEY", "together_ai": "TOGETHERAI_API_KEY"}.get(
        provider, f"{provider.upper()}_API_KEY"
    )


def _bare_name_hint(litellm: ModuleType, spec: str) -> str:
    """Suggest the provider when litellm can infer it from a bare name like 'gpt-4o-mini'."""
    try:
        name, provider, _, _ = litellm.get_llm_provider(model=spec)
    except Exception:  # litellm raises BadRequestError for names it cannot place
        return ""
    return f"Did you mean '{provider}/{name}'? " if provider and name else ""
