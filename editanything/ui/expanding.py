"""The Edit tab's Expand button: the words in the prompt box → a prompt written for where the edit will run.

The expansion replaces the prompt box's text, so the user can edit it before generating; the words it
came from stay on the line under the boxes. A negative prompt the user typed is kept. The expander is
`auto` (the local language model when on disk, else the rules): the UI never calls a paid service to
expand. One expansion at a time: a local model's seeded sampling sets torch's RNG for its duration.
"""

from __future__ import annotations

import html
import threading

from ..prompting import TARGETS, get_expander, target_for
from ..types import GenerationParams
from .locks import ModelLocks
from .remote import GENERATORS as HOSTED


class ExpandHandlers:
    def __init__(self, locks: ModelLocks) -> None:
        self.locks = locks
        self._lock = threading.Lock()
        self._expander = None  # built on the first click (a local model loads once)

    def expand(self, words: str, negative: str, generator: str | None, seed: float) -> tuple[str, str, str]:
        """(prompt, negative prompt, note) for the words in the prompt box and where the edit runs."""
        hosted = HOSTED.get(generator) if generator else None
        # the generator is built, not loaded: its class says which target suits it
        target = hosted or target_for(self.locks.editor.generator)
        seed = GenerationParams(seed=int(seed)).with_seed().seed
        with self._lock:
            if self._expander is None:
                self._expander = get_expander("auto")
            expansion = self._expander.expand(words, target, seed)
        note = (f"Expanded from “{html.escape(expansion.words)}” with {expansion.expander} for "
                f"{TARGETS[target].label} (seed {seed}); edit the prompt freely before generating.")
        return expansion.prompt, negative or expansion.negative_prompt, note
