"""Progress and cancellation of long work (diffusion steps, sketch batches), without threading callbacks through APIs.

Generation loops call `report(Step(...))` after each step. Whoever runs a job (the CLI's step bar, the UI's
progress and Cancel button) wraps it in `listening(callback)`; the callback sees each step and may raise
`Cancelled` to stop the job there. The listener lives in a context variable, so concurrent jobs on other
threads (two UI sessions) each see only their own steps.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

from .errors import Cancelled


@dataclass(frozen=True)
class Step:
    """Step `step` of `steps` of image `image` (0-based) of `images` in one call."""

    image: int
    images: int
    step: int
    steps: int


Listener = Callable[[Step], None]
_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar("editanything_progress", default=None)


def report(step: Step) -> None:
    """Tell the current job's listener about a finished step; it may raise `Cancelled`."""
    listener = _listener.get()
    if listener is not None:
        listener(step)


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Send the steps reported inside this block (on this thread or context) to `listener`."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


class CancelToken:
    """A flag another thread sets; `check` raises `Cancelled` once it is set (use it as, or inside, a listener)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self, _step: Step | None = None) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled")
