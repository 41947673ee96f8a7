"""`auto`: the local language model when its weights are on disk, else the rules. Never a paid service:
`openai` runs only when asked for by name."""

from __future__ import annotations

LOCAL_MODELS = ("smollm2-360m-instruct",)  # tried in this order


def pick() -> str:
    """The expander `auto` stands for now."""
    from ..models import find_model

    return next((m for m in LOCAL_MODELS if find_model(m) is not None), "rules")
