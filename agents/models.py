"""Model registry: 'builtin' is the offline model; anything else goes through litellm."""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_core.language_models import BaseChatModel

if TYPE_CHECKING:
    from server.resources import Resources

BUILTIN = "builtin"


def make_model(spec: str, resources: Resources) -> BaseChatModel:
    """The chat model for a model string; a bad string or missing key is a clear error."""
    if spec.strip().lower() == BUILTIN:
        from agents.builtin import BuiltinChatModel

        return BuiltinChatModel.for_resources(resources)
    from agents.llm import make_chat_model

    settings = resources.settings
    return make_chat_model(
        spec.strip(),
        fallbacks=settings.fallback_models(),
        api_base=settings.model_api_base,
        timeout_s=settings.model_timeout_s,
    )
