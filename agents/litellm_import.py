"""Import litellm on first use, quietly: it takes seconds, prints banners and trips warnings."""

from __future__ import annotations

import os
import warnings
from types import ModuleType

# pydantic warns about litellm's ReadOnly TypedDict items when it first builds the schema of
# Message/Delta, which litellm defers to the first response.
_READONLY_WARNING = r"Items? .* on TypedDict class '.*' (is|are) using the `ReadOnly` qualifier"
# litellm's stream handler getattr()s every attribute of each delta, including deprecated ones.
_INSTANCE_ATTRIBUTE_WARNING = r"Accessing the 'model_\w+' attribute on the instance is deprecated"


def litellm_module() -> ModuleType:
    """litellm, imported and tamed on first use (most CLI commands never call a model)."""
    # Before the import: litellm would otherwise fetch its cost map over the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm
    from litellm.types.utils import Delta, Message

    # litellm prints provider banners to stdout on bad model names; that would corrupt --json.
    litellm.suppress_debug_info = True
    # Both warnings fire inside litellm's response handling, and under `-W error` (our test
    # suite) litellm turns them into failed calls. They are litellm's to fix, not the caller's.
    if not (Message.__pydantic_complete__ and Delta.__pydantic_complete__):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_READONLY_WARNING, category=UserWarning)
            Message.model_rebuild()
            Delta.model_rebuild()
    # Re-added on every use (it is idempotent): pytest resets the filters for each test. The
    # ReadOnly one also fires later, when litellm first imports its github_copilot types.
    warnings.filterwarnings("ignore", message=_READONLY_WARNING, category=UserWarning)
    warnings.filterwarnings(
        "ignore",
        message=_INSTANCE_ATTRIBUTE_WARNING,
        category=DeprecationWarning,
        module=r"litellm\.",
    )
    return litellm
