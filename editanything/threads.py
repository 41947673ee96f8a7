"""One CPU thread policy for the whole process: how many threads a piece of work may take.

`EDITANYTHING_THREADS` sets the count. Without it, the count is the cores this process may use
(its CPU affinity, capped by a cgroup CPU quota, as in a container) less the cores other work keeps
busy: torch's default of one thread per core runs several times slower than one thread when other
processes want the same cores, because its threads wait for each other at every layer.

A process that runs different kinds of work side by side (the UI: a click's selection beside a long
generation) declares them with `share_cores`, and each takes its share instead of all the cores.
`using(role)` applies a role's count to torch in the calling thread for a block: torch's count is
per thread once set (a thread started later inherits the last one set), so a selection handler and a
generation handler can run with different counts at once. A generation records the count it ran with
(`threads_for("generation")` is its default) so replay asks for the same count again.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Iterator, Mapping

from .errors import InvalidInputError

ENV = "EDITANYTHING_THREADS"
CGROUP = Path("/sys/fs/cgroup")
MAX_THREADS = 1024

_lock = threading.Lock()
_side_by_side: tuple[str, ...] = ()
_interactive: frozenset[str] = frozenset()
_running: Counter = Counter()  # role -> blocks running now
_granted: Counter = Counter()  # role -> threads those blocks took (they are in the load: not "other work")
_local = threading.local()  # .counts: the counts of the `using` blocks open in this thread, innermost last


def from_env(environ: Mapping[str, str] = os.environ) -> int | None:
    """The count `EDITANYTHING_THREADS` asks for, or None when it is unset or empty."""
    raw = environ.get(ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_THREADS:
        raise InvalidInputError(f"{ENV}={raw!r} must be a whole number of CPU threads from 1 to {MAX_THREADS}; "
                                f"unset it to let editanything choose from the free cores")
    return int(raw)


def cgroup_cpu_limit(root: Path = CGROUP) -> float | None:
    """CPUs the cgroup quota allows (cgroup v2 `cpu.max`, or v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`);
    None when there is no quota or no file to read."""
    try:
        fields = (root / "cpu.max").read_text().split()
        if len(fields) == 2 and fields[0] != "max":
            return _quota(fields[0], fields[1])
        return None
    except (OSError, ValueError):
        pass
    try:
        v1 = root / "cpu"
        return _quota((v1 / "cpu.cfs_quota_us").read_text(), (v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None


def _quota(quota: str, period: str) -> float | None:
    q, p = int(quota.strip()), int(period.strip())
    return q / p if q > 0 and p > 0 else None


def usable_cores(root: Path = CGROUP) -> int:
    """Cores this process may run on: its affinity, capped by the cgroup quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def busy_cores(samples: int = 5, gap: float = 0.002) -> float:
    """Cores other work keeps busy now: the threads the kernel finds runnable (less this one), the median
    of a few looks. Not the 1-minute load average: it lags a minute behind a batch that starts or stops."""
    looks = []
    for i in range(samples):
        try:
            looks.append(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):  # not Linux
            return min(os.getloadavg()[0], float(os.cpu_count() or 1)) if hasattr(os, "getloadavg") else 0.0
        if i + 1 < samples:
            time.sleep(gap)
    return float(max(0, statistics.median(looks)))


BUSY_MAX_AGE = 1.0  # seconds a look at the load serves: it costs ~8 ms, a click's decoder ~60
_busy_seen: tuple[float, float] | None = None  # (monotonic time, busy cores) of the last look


def recent_busy_cores() -> float:
    """`busy_cores()`, looked at again only when the last look is over `BUSY_MAX_AGE` old: every click and job
    asks, and a batch that starts or stops is still seen within a second."""
    global _busy_seen
    now = time.monotonic()
    seen = _busy_seen
    if seen is None or now - seen[0] > BUSY_MAX_AGE:
        seen = _busy_seen = (now, busy_cores())
    return seen[1]


def available(environ: Mapping[str, str] = os.environ, *, cores: int | None = None,
              busy: float | None = None) -> int:
    """The process's thread count: `EDITANYTHING_THREADS`, else the usable cores that other work leaves free
    (the share of them the machine's load takes, at least one)."""
    asked = from_env(environ)
    if asked is not None:
        return asked
    cores = usable_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    machine = max(cores, os.cpu_count() or cores)
    free = cores * (1 - min(1.0, busy / machine))
    return max(1, min(cores, math.floor(free + 0.5)))


def process_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What a command sets before torch, OpenMP or MKL load, so their pools start at `available()`
    threads: `EDITANYTHING_THREADS` overrides OMP_NUM_THREADS and MKL_NUM_THREADS, the load-based
    default does not (a user's OMP_NUM_THREADS stands)."""
    count = str(available(environ))
    forced = from_env(environ) is not None
    return {var: count for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if forced or not environ.get(var)}


def share_cores(*roles: str, interactive: tuple[str, ...] = ()) -> None:
    """Declare the roles this process runs side by side (the UI: "selection", "generation", "sketch"):
    each then takes an even share of `available()` with the others running now. The share of an
    `interactive` role is kept free for it: a long role (a generation runs for minutes) never takes
    it, so a click that comes meanwhile finds its cores; an interactive role alone takes all.
    () undeclares."""
    global _side_by_side, _interactive
    if not set(interactive) <= set(roles):
        raise ValueError(f"interactive roles {interactive} must be among {roles}")
    with _lock:
        _side_by_side, _interactive = tuple(roles), frozenset(interactive)


def threads_for(role: str, environ: Mapping[str, str] = os.environ) -> int:
    """Threads `role` may take now: `available()`, split with the declared roles running now (and the
    interactive ones, for a role that is not). The threads this process's own running blocks took are
    not counted as other work's load."""
    with _lock:
        own = sum(_granted.values())
        sharing = {r for r in _side_by_side if r == role or _running[r]}
        if role not in _interactive:
            sharing |= _interactive
    busy = None if from_env(environ) is not None else max(0.0, recent_busy_cores() - own)
    total = available(environ, busy=busy)
    return total if role not in _side_by_side else max(1, total // len(sharing))


@contextlib.contextmanager
def using(role: str, threads: int | None = None) -> Iterator[int]:
    """Run the block as `role` with `threads` (default: `threads_for(role)`) torch threads in this
    thread; yields the count. torch's count in this thread is restored afterwards."""
    count = threads or threads_for(role)
    with _lock:
        _running[role] += 1
        _granted[role] += count
    torch = _torch()
    before = torch.get_num_threads() if torch else None
    counts = _local.__dict__.setdefault("counts", [])
    counts.append(count)
    try:
        if torch and count != before:
            torch.set_num_threads(count)
        yield count
    finally:
        counts.pop()
        if torch and count != before:
            torch.set_num_threads(before)
        with _lock:
            _running[role] -= 1
            _granted[role] -= count


def current(environ: Mapping[str, str] = os.environ) -> int:
    """The thread count work in this thread runs with, for runtimes other than torch (ONNX Runtime): torch's
    count here where torch is loaded (`using` sets it), else the innermost `using` block's, else a batch
    worker's slot (`OMP_NUM_THREADS`, which the pool sets), else `available()`. Imports nothing."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        return torch.get_num_threads()
    counts = getattr(_local, "counts", None)
    if counts:
        return counts[-1]
    omp = environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        return int(omp)
    return available(environ)


def _torch():
    """torch when it is installed (a block's models may load inside it); weight-free installs have none."""
    try:
        import torch
    except ImportError:
        return None
    return torch
