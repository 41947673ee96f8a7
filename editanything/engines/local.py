"""The embedded engine: a pool of spawned processes on this machine."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from multiprocessing import get_context
from typing import Any, Callable, Iterator, Sequence

from .base import attempt, limit_threads


class LocalEngine:
    """`workers` processes (1: in this process, so a prebuilt model is reused)."""

    name = "local"

    def __init__(self, workers: int, cores: int) -> None:
        self.workers = workers
        self.cores = cores

    def run(self, jobs: Sequence[Any], work: Callable[..., Any]) -> Iterator[tuple[Any, str | None]]:
        if self.workers == 1:
            for job in jobs:
                yield job, attempt(work, job)
            return
        # Spawned, not forked: a forked child hangs when OpenCV's thread pool was used in the parent.
        threads = max(1, self.cores // self.workers)
        with ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"), initializer=limit_threads,
                                 initargs=(threads,)) as pool:
            chunk = max(1, min(16, len(jobs) // (self.workers * 8)))
            finished = 0
            try:
                for job, error in zip(jobs, pool.map(partial(attempt, work), jobs, chunksize=chunk)):
                    finished += 1
                    yield job, error
            except BrokenProcessPool:
                for job in jobs[finished:]:
                    yield job, "a worker process crashed (out of memory?)"
