"""One job at a time per model kind (as in the UI), a bounded queue, and what `/progress` and `/interrupt` see.

The Editor's backends are shared and not thread-safe: every request holds the lock of the models it
uses (`ModelLocks`, the UI's own, so `ui --api` shares it with the page). At most `queue_size`
requests of a kind wait or run; more are turned away at once (429). A generation job's steps
(`editanything.progress`) update its progress and a `CancelToken` that `/interrupt` sets.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from ..progress import CancelToken, Step, listening
from ..ui.locks import ModelLocks
from .http import ApiError

KINDS = ("selection", "generation")


@dataclass
class Job:
    kind: str
    token: CancelToken = field(default_factory=CancelToken)
    started: float = field(default_factory=time.time)
    step: Step | None = None

    def fraction(self) -> float:
        if self.step is None or not self.step.steps or not self.step.images:
            return 0.0
        done = self.step.image * self.step.steps + min(self.step.step + 1, self.step.steps)
        return min(done / (self.step.images * self.step.steps), 1.0)


class Slots:
    def __init__(self, locks: ModelLocks, queue_size: int) -> None:
        self.locks = locks
        self.queue_size = queue_size
        self._guard = threading.Lock()
        self._queued = dict.fromkeys(KINDS, 0)
        self._running: dict[str, Job] = {}

    @contextmanager
    def run(self, kind: str) -> Iterator[Job]:
        """Hold `kind`'s models for the block (after the requests before it); 429 when the queue is full."""
        with self._guard:
            if self._queued[kind] >= self.queue_size:
                raise ApiError(429, f"the {kind} queue is full ({self.queue_size} requests); try again shortly")
            self._queued[kind] += 1
        try:
            with (self.locks.selecting() if kind == "selection" else self.locks.generating()):
                job = Job(kind)

                def listener(step: Step) -> None:
                    job.token.check()
                    job.step = step

                with self._guard:
                    self._running[kind] = job
                try:
                    with listening(listener):
                        yield job
                finally:
                    with self._guard:
                        self._running.pop(kind, None)
        finally:
            with self._guard:
                self._queued[kind] -= 1

    def interrupt(self) -> int:
        """Stop the running generation at its next step; how many jobs were told."""
        with self._guard:
            jobs = list(self._running.values())
        for job in jobs:
            job.token.cancel()
        return len(jobs)

    def progress(self) -> dict:
        """The WebUI's /progress answer for the running generation (zeros when idle)."""
        with self._guard:
            job = self._running.get("generation")
            queued = self._queued["generation"]
        fraction = job.fraction() if job else 0.0
        elapsed = time.time() - job.started if job else 0.0
        step = job.step if job else None
        return {
            "progress": round(fraction, 4),
            "eta_relative": elapsed / fraction - elapsed if fraction else 0.0,  # unrounded: a fast start is not 0
            "state": {"skipped": False, "interrupted": bool(job and job.token.cancelled), "stopping_generation": False,
                      "job": "img2img" if job else "", "job_count": queued,
                      "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(job.started)) if job else "0",
                      "job_no": step.image if step else 0, "sampling_step": step.step + 1 if step else 0,
                      "sampling_steps": step.steps if step else 0},
            "current_image": None,
            "textinfo": None,
        }
