"""torch's CPU thread count during a generation: set only when asked for, recorded always, one region at a time.

The last bits of a CPU result depend on how many threads split its sums, so a generation records the
count it ran with and replay asks for that count again. `torch.set_num_threads` is not local to a
call: it reaches other threads of the process (new ones inherit it), including selection work running
beside a generation in the UI. Hence:
- the count is changed only when a generation asks for one that differs from the current one (replay,
  `threads=`); otherwise nothing is touched, and concurrent work never sees a change;
- every pinned region holds one process-wide lock, so two generations never overlap while one of them
  changes the count: the count each records is the count it ran with, and it is restored before the
  next one starts. Generations in one process therefore run one at a time (they would share the same
  cores anyway); selection never takes this lock.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from ..errors import InvalidInputError

_REGION = threading.RLock()


def check_threads(threads: int | None) -> int | None:
    """A thread count option: None (the process's) or an int >= 1."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise InvalidInputError(f"threads must be an int >= 1 (CPU threads while generating); got {threads!r}")
    return threads


@contextlib.contextmanager
def pinned(threads: int | None = None) -> Iterator[int]:
    """Run the block with `threads` torch CPU threads (None: the calling thread's count, which the process's
    thread policy sets, e.g. `editanything.threads.using("generation")` in the UI); yields the count it runs with."""
    import torch

    with _REGION:
        before = torch.get_num_threads()
        count = threads or before
        if count != before:
            torch.set_num_threads(count)
        try:
            yield count
        finally:
            if count != before:
                torch.set_num_threads(before)
