"""The embedded engine: a pool of spawned processes on this machine.

A job that kills its worker (a segfault, the kernel's OOM killer) breaks the whole pool, and the pool
cannot say which job did it. So only a few chunks are in flight at a time; when the pool breaks, those
jobs (the suspects) run again one at a time in a fresh pool, where a crash can only be theirs: that
file alone fails, the others are done, and the rest of the batch goes on in parallel. When files keep
killing their workers even alone, the fault is not theirs, and the batch stops instead of restarting
the pool for every file.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any, Callable, Iterator, Sequence

from ..errors import WorkerStartupError
from .base import attempt, limit_threads
from .priority import batch_nice, lower_priority

CRASHED = "its worker process died on this file twice (a crash, or out of memory?); the other files went on"
GIVE_UP = 3
STOPPED = (f"not run: worker processes died on {GIVE_UP} files in a row, each alone, so the batch stopped "
           "(out of memory, or a broken install?); try fewer --workers, or --workers 1 to see the error")
STARTUP = ("the worker processes died while starting, before any file: a script that runs a batch must keep "
           "its code under `if __name__ == \"__main__\":`, since each spawned worker imports it again (or run "
           "with workers=1)")


def _start_worker(threads: int, nice: int, started: Any) -> None:
    lower_priority(nice)  # first: the threads OpenCV and torch start take this thread's niceness
    limit_threads(threads)
    with started.get_lock():
        started.value += 1


def _needs_main(work: Callable[..., Any]) -> bool:
    """Whether unpickling `work` in a worker needs the parent's main script (a function defined there)."""
    try:
        return b"__main__" in pickle.dumps(work)
    except Exception:  # not picklable: the pool will say so, as before
        return True


@contextlib.contextmanager
def _spawning(hide_main: bool) -> Iterator[None]:
    """While workers are spawned, hide the parent's `__main__` if `hide_main`.

    A spawned worker imports the parent's main script again, to find what was defined there; an
    unguarded script (no `if __name__ == "__main__":`) would then run its batch once more in every
    worker, and they die. Jobs whose work pickles by reference to editanything's own functions need
    no script in the workers: with no `__main__` to see, multiprocessing gives them none.
    """
    if not hide_main or "__main__" not in sys.modules:
        yield
        return
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def attempt_all(work: Callable[..., Any], jobs: Sequence[Any]) -> list[str | None]:
    return [attempt(work, job) for job in jobs]


class LocalEngine:
    """`workers` processes (1: in this process, so a prebuilt model is reused), each at niceness `nice`
    (None: `priority.batch_nice()`; the calling process keeps its own, so workers=1 runs at it)."""

    name = "local"

    def __init__(self, workers: int, cores: int, nice: int | None = None) -> None:
        self.workers = workers
        self.cores = cores
        self.nice = batch_nice(nice)

    def run(self, jobs: Sequence[Any], work: Callable[..., Any]) -> Iterator[tuple[Any, str | None]]:
        if self.workers == 1:
            for job in jobs:
                yield job, attempt(work, job)
            return
        chunk = max(1, min(16, len(jobs) // (self.workers * 8)))
        chunks = [list(jobs[i:i + chunk]) for i in range(0, len(jobs), chunk)]
        chunks.reverse()  # popped from the end: first jobs first
        streak = 0  # files in a row whose worker died even alone
        hide_main = not _needs_main(work)
        while chunks:
            pool, started = self._pool()
            try:
                suspects = yield from self._parallel(pool, chunks, work, hide_main)
                if suspects and not started.value:
                    raise WorkerStartupError(STARTUP)  # every file would fail alike: say it once
                if suspects:
                    pool.shutdown(wait=True, cancel_futures=True)
                    pool, _ = self._pool()
                for i, job in enumerate(suspects):
                    pool, error = self._alone(pool, job, work, hide_main)
                    streak = streak + 1 if error == CRASHED else 0
                    yield job, error
                    if streak == GIVE_UP:  # not these files: every worker dies (a broken install, no memory)
                        yield from ((j, STOPPED) for j in suspects[i + 1:] + [j for c in reversed(chunks) for j in c])
                        return
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def _pool(self) -> tuple[ProcessPoolExecutor, Any]:
        """A fresh pool, and the count of its workers that got through start-up."""
        # Spawned, not forked: a forked child hangs when OpenCV's thread pool was used in the parent.
        context = get_context("spawn")
        threads = max(1, self.cores // self.workers)
        started = context.Value("i", 0)
        pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                   initargs=(threads, self.nice, started))
        return pool, started

    def _parallel(self, pool: ProcessPoolExecutor, chunks: list[list[Any]], work: Callable[..., Any],
                  hide_main: bool):
        """Run `chunks` (popping them) until done or the pool breaks; then return the jobs in flight then."""
        # One chunk queued beyond the running ones keeps every worker busy and bounds the suspects.
        window = self.workers + 1
        running: dict[Future, list[Any]] = {}
        while chunks or running:
            while chunks and len(running) < window:
                batch = chunks.pop()
                with _spawning(hide_main):  # a submit may spawn a worker
                    running[pool.submit(attempt_all, work, batch)] = batch
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            if any(isinstance(f.exception(), BrokenProcessPool) for f in finished):
                done = [f for f in running if f.done() and f.exception() is None]
                for future in done:  # results that came back before the break count
                    yield from zip(running.pop(future), future.result())
                return [job for lost in running.values() for job in lost]
            for future in finished:
                yield from zip(running.pop(future), future.result())
        return []

    def _alone(self, pool: ProcessPoolExecutor, job: Any, work: Callable[..., Any], hide_main: bool
               ) -> tuple[ProcessPoolExecutor, str | None]:
        """Run one job with nothing else in flight: a broken pool now means this file; a fresh pool goes on."""
        try:
            with _spawning(hide_main):
                future = pool.submit(attempt, work, job)
            return pool, future.result()
        except BrokenProcessPool:
            pool.shutdown(wait=True, cancel_futures=True)
            return self._pool()[0], CRASHED
