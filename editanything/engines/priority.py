"""Batch workers run at a lower CPU priority: a batch is background work, a click in the UI is not.

Each worker process (a local pool's, a Ray actor) raises its own niceness to `EDITANYTHING_BATCH_NICE`
(default 10; 0 leaves it as inherited) when it starts. A worker never raises its priority (a niceness
already above the one asked stays), and the process that runs the batch keeps its own: a UI that runs
a batch in-process (workers=1) must not slow its own clicks. Niceness changes when a process runs,
never what it computes: outputs and recipes are the same bytes at any niceness.

The kernel weighs niceness between processes that share a scheduling group: one terminal session
where the kernel groups sessions (autogroup), one container or systemd unit where a cgroup does.
"""

from __future__ import annotations

import os
from typing import Mapping

from ..errors import InvalidInputError

ENV = "EDITANYTHING_BATCH_NICE"
DEFAULT_NICE = 10  # a nice-0 click gets ~90% of a core that a nice-10 worker also wants (CFS weights 1024:110)
MAX_NICE = 19


def batch_nice(asked: int | None = None, environ: Mapping[str, str] = os.environ) -> int:
    """The niceness batch workers take: `asked` (the --nice option), else `EDITANYTHING_BATCH_NICE`,
    else DEFAULT_NICE. 0 turns it off."""
    where = "--nice"
    if asked is None:
        raw = environ.get(ENV, "").strip()
        if not raw:
            return DEFAULT_NICE
        where, asked = f"{ENV}={raw!r}", int(raw) if raw.isdigit() else -1
    elif isinstance(asked, bool) or not isinstance(asked, int):
        asked = -1
    if not 0 <= asked <= MAX_NICE:
        raise InvalidInputError(f"{where}: the niceness of batch workers is a whole number from 0 (as the "
                                f"calling process) to {MAX_NICE} (lowest priority); default {DEFAULT_NICE}. "
                                "A batch never raises its priority")
    return asked


def niceness() -> int:
    """This process's niceness now (0 where the OS has none to tell)."""
    return os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0


def lower_priority(nice: int) -> int:
    """Raise this process's niceness to `nice` unless it is there already (never lowers it: that would
    raise the priority, which needs privileges and is not a batch's to take); returns the niceness now.

    Linux keeps a niceness per thread, and a new thread takes its creator's: every thread there is now
    is lowered, so the threads torch or OpenCV start later are lowered too."""
    if not hasattr(os, "setpriority"):  # not Unix
        return 0
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # not Linux: the setting is the process's
        threads = [0]
    for tid in threads:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:  # a thread that ended meanwhile; a sandbox that forbids it: that one stays as it was
            pass
    return niceness()
