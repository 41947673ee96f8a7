"""A batch job that writes down where it ran: its process id and the niceness it ran at."""

import os
from pathlib import Path


def _nice(stat: str) -> int | None:
    try:
        return int(Path(stat).read_text().rsplit(")", 1)[1].split()[16])  # field 19 of /proc/…/stat
    except FileNotFoundError:  # a thread that ended meanwhile
        return None


def write_niceness(source: Path, output: Path) -> None:
    """`output` gets "PID NICE LEAST": the process, the niceness of the thread that ran the job (as the
    kernel tells it in /proc), and the least niceness among all the process's threads."""
    least = min(n for t in os.listdir("/proc/self/task") if (n := _nice(f"/proc/self/task/{t}/stat")) is not None)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(f"{os.getpid()} {_nice('/proc/thread-self/stat')} {least}")
