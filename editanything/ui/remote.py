"""The Edit tab's choice of where to generate: this machine, or a hosted service (the crop leaves the machine)."""

from __future__ import annotations

from ..errors import InvalidInputError
from ..pipeline import Editor

GENERATORS = {"This machine": None, "Stability AI (hosted)": "stability", "OpenAI (hosted)": "openai"}
LOCAL = "This machine"
PRIVACY_NOTE = ("With **Stability AI** or **OpenAI**, the crop around your selection (for Background: the photo "
                "minus its margins), its mask and the prompt are uploaded to that service; the rest of the photo "
                "stays here. The keys are read on the server from `STABILITY_API_KEY` / `OPENAI_API_KEY`.")


def hosted_editor(choice: str | None) -> Editor | None:
    """An Editor generating at the chosen service, or None for this machine's own generator."""
    if choice not in GENERATORS and choice is not None:
        raise InvalidInputError(f"unknown generator {choice!r}; choose one of: {', '.join(GENERATORS)}")
    name = GENERATORS.get(choice) if choice else None
    # the mask comes from the session, so this Editor never loads a detector or segmenter
    return None if name is None else Editor(generator=name, segmenter=None, detector=None)
