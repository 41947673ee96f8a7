"""The Edit tab's Expand and From photo buttons: words, or the photo's caption → a prompt written for where
the edit will run.

The expansion replaces the prompt box's text, so the user can edit it before generating; the words it
came from stay on the line under the boxes. A negative prompt the user typed is kept. The expander is
`auto` (the local language model when on disk, else the rules): the UI never calls a paid service to
expand. One expansion at a time: a local model's seeded sampling sets torch's RNG for its duration.
"""

from __future__ import annotations

import html
import threading

from ..caption import CAPTIONER_MODELS
from ..errors import InvalidInputError, ModelNotFound
from ..models import download_command
from ..prompting import TARGETS, get_expander, target_for
from ..types import GenerationParams
from .locks import ModelLocks
from .remote import GENERATORS as HOSTED
from .state import Session


class ExpandHandlers:
    def __init__(self, locks: ModelLocks) -> None:
        self.locks = locks
        self._lock = threading.Lock()
        self._expander = None  # built on the first click (a local model loads once)

    def expand(self, words: str, negative: str, generator: str | None, seed: float) -> tuple[str, str, str]:
        """(prompt, negative prompt, note) for the words in the prompt box and where the edit runs."""
        return self._expand(words, negative, generator, seed, "From “{words}”")

    def from_photo(self, session: Session, negative: str, generator: str | None, seed: float) -> tuple[str, str, str]:
        """(prompt, negative prompt, note): the captioner's description of the whole photo, expanded as `expand`
        does; the box's words are replaced (a second click gives the same prompt, not a longer one)."""
        if session.image is None:
            raise InvalidInputError("upload a photo first: the prompt is written from its caption")
        with self.locks.generating() as editor:  # the captioner is guarded with the generator
            captioner = editor.captioner
            if captioner is None:
                raise ModelNotFound("a prompt from the photo needs a captioner: run "
                                    f"`{download_command(CAPTIONER_MODELS[0])}`, then restart the UI")
            caption = captioner.caption(session.image)
        return self._expand(caption, negative, generator, seed, "From the photo's caption “{words}”")

    def _expand(self, words: str, negative: str, generator: str | None, seed: float,
                source: str) -> tuple[str, str, str]:
        hosted = HOSTED.get(generator) if generator else None
        # the generator is built, not loaded: its class says which target suits it
        target = hosted or target_for(self.locks.editor.generator)
        seed = GenerationParams(seed=int(seed)).with_seed().seed
        with self._lock:
            if self._expander is None:
                self._expander = get_expander("auto")
            expansion = self._expander.expand(words, target, seed)
        note = (f"{source.format(words=html.escape(expansion.words))}, expanded with {expansion.expander} for "
                f"{TARGETS[target].label} (seed {seed}); edit the prompt freely before generating.")
        return expansion.prompt, negative or expansion.negative_prompt, note
