"""The Expand buttons (Edit and Generate tabs) and the Edit tab's From photo: words, or the photo's caption →
a prompt written for where the edit or the generation will run.

The expansion replaces the prompt box's text, so the user can edit it before generating; the words it
came from stay on the line under the boxes. A negative prompt the user typed is kept. The expander is
`auto` (the local language model when on disk, else the rules): the UI never calls a paid service to
expand. One expansion at a time: a local model's seeded sampling sets torch's RNG for its duration.
"""

from __future__ import annotations

import html
import threading

from typing import Any, Callable

from ..caption import captioner_download
from ..errors import EditAnythingError, InvalidInputError, ModelNotFound
from ..prompting import TARGETS, Expansion, get_expander, target_for
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
        target = self._target(generator, lambda: self.locks.editor.generator)
        expansion, negative, note = self._expand(words, negative, target, seed, "From “{words}”")
        return expansion.prompt, negative, note

    def expand_generate(self, session: Session, words: str, negative: str, generator: str | None,
                        seed: float) -> tuple[Session, str, str, str]:
        """The Generate tab's Expand: (session, prompt, negative prompt, note) as `expand`, for the text-to-image
        model that tab generates on. The session keeps the expansion: a generate from its prompt records the
        words and the expansion in the recipe, as `generate --expand` does."""
        target = self._target(generator, lambda: self.locks.editor.text_generator)
        expansion, negative, note = self._expand(words, negative, target, seed, "From “{words}”")
        session.expansion = expansion.to_dict()
        return session, expansion.prompt, negative, note

    def from_photo(self, session: Session, negative: str, generator: str | None, seed: float) -> tuple[str, str, str]:
        """(prompt, negative prompt, note): the captioner's description of the whole photo, expanded as `expand`
        does; the box's words are replaced (a second click gives the same prompt, not a longer one)."""
        if session.image is None:
            raise InvalidInputError("upload a photo first: the prompt is written from its caption")
        with self.locks.generating() as editor:  # the captioner is guarded with the generator
            captioner = editor.captioner
            if captioner is None:
                raise ModelNotFound("a prompt from the photo needs a captioner: run "
                                    f"`{captioner_download()}`, then restart the UI")
            caption = captioner.caption(session.image)
        target = self._target(generator, lambda: self.locks.editor.generator)
        expansion, negative, note = self._expand(caption, negative, target, seed,
                                                 "From the photo's caption “{words}”")
        return expansion.prompt, negative, note

    @staticmethod
    def _target(generator: str | None, local: Callable[[], Any]) -> str:
        """The target for the "Generate on" choice: the hosted service's, else that of the local generator
        (built, not loaded: its class says which target suits it)."""
        hosted = HOSTED.get(generator) if generator else None
        if hosted:
            return hosted
        try:
            return target_for(local())
        except EditAnythingError:  # no model on disk yet: Generate says which to fetch; SD 1.5 tags meanwhile
            return target_for(None)

    def _expand(self, words: str, negative: str, target: str, seed: float,
                source: str) -> tuple[Expansion, str, str]:
        seed = GenerationParams(seed=int(seed)).with_seed().seed
        with self._lock:
            if self._expander is None:
                self._expander = get_expander("auto")
            expansion = self._expander.expand(words, target, seed)
        note = (f"{source.format(words=html.escape(expansion.words))}, expanded with {expansion.expander} for "
                f"{TARGETS[target].label} (seed {seed}); edit the prompt freely before generating.")
        return expansion, negative or expansion.negative_prompt, note
