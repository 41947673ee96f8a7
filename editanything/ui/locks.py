"""One lock per kind of model, so a long diffusion edit never holds up anyone's clicks.

The backends are shared by every session and are not thread-safe, so every event that touches
the Editor holds the lock of the models it uses: selection (detector, segmenter) or generation
(generator, captioner); the Models tab (and page load) takes each stage's lock in turn. Where
both are held they are taken in the same order. The gradio queue has one concurrency group per
lock (`SELECTION`, `GENERATION`), so requests wait their turn in the queue rather than in a thread.
Holding a lock also runs the block with that role's share of the CPU threads (`editanything.threads`).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from .. import threads
from ..pipeline import Editor

SELECTION = "selection"  # gradio concurrency group of the events that segment or detect
GENERATION = "generation"  # ... of the events that generate
SKETCH = "sketch"  # the thread policy's role of a Sketch tab run


def share_cores() -> None:
    """Selection, generation and sketches run side by side: each takes its share of the threads, not all.
    A click's share is kept free while a generation or a sketch run (they run for minutes; a click
    is short, and takes all the threads when nothing else runs)."""
    threads.share_cores(SELECTION, GENERATION, SKETCH, interactive=(SELECTION,))


class ModelLocks:
    """The Editor behind per-kind locks: `with locks.selecting() as editor: editor.segmenter...`."""

    def __init__(self, editor: Editor) -> None:
        self.editor = editor
        self.selection = threading.Lock()
        self.generation = threading.Lock()
        self.of_stage = {"segmenter": self.selection, "detector": self.selection,
                         "generator": self.generation, "captioner": self.generation}
        """The lock guarding each Editor stage."""

    @contextmanager
    def selecting(self) -> Iterator[Editor]:
        """Hold the detector and segmenter, with the selection's share of the threads."""
        with self.selection, threads.using(SELECTION):
            yield self.editor

    @contextmanager
    def generating(self) -> Iterator[Editor]:
        """Hold the generator and captioner; with `low_memory` the selection models too (an edit frees them)."""
        if self.editor.low_memory:
            with self.selection, self.generation, threads.using(GENERATION):
                yield self.editor
        else:
            with self.generation, threads.using(GENERATION):
                yield self.editor
