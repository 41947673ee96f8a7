"""The running jobs of each browser session, so *Cancel*, or the tab being closed, stops them.

A job (an edit, a sketch run) runs inside `jobs.running(key, on_step)`: the generation loop's steps
(`editanything.progress`) reach `on_step` (the UI's progress bar) and a `CancelToken`, which raises
`Cancelled` at the next step once the session's Cancel is pressed or its browser has gone
(gradio's `unload`). The key is gradio's session hash, which the page and its heartbeat share.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from ..progress import CancelToken, Step, listening


class Jobs:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, set[CancelToken]] = {}

    @contextmanager
    def running(self, key: str | None, on_step: Callable[[Step], None] | None = None) -> Iterator[CancelToken]:
        """Run the block as one job of session `key` (None: a job no one can cancel, e.g. a direct call)."""
        token = CancelToken()
        if key is not None:
            with self._lock:
                self._tokens.setdefault(key, set()).add(token)

        def listener(step: Step) -> None:
            token.check()
            if on_step is not None:
                on_step(step)

        try:
            with listening(listener):
                yield token
        finally:
            if key is not None:
                with self._lock:
                    self._tokens.get(key, set()).discard(token)
                    if not self._tokens.get(key):
                        self._tokens.pop(key, None)

    def cancel(self, key: str | None) -> int:
        """Cancel every job of session `key`; how many there were."""
        with self._lock:
            tokens = list(self._tokens.get(key, ())) if key is not None else []
        for token in tokens:
            token.cancel()
        return len(tokens)
