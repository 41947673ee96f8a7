"""A batch job for the local pool's crash test: it kills its own worker process on one file."""

import os
from pathlib import Path

CRASH_ON = "p07.txt"


def copy_or_die(source: Path, output: Path) -> None:
    """Copy `source` to `output`, except on CRASH_ON, where the process exits at once (as a segfault does)."""
    if source.name == CRASH_ON:
        os._exit(1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(source.read_bytes())


def always_die(source: Path, output: Path) -> None:
    """Every file kills its worker: the fault is the worker's (a broken install), not the files'."""
    os._exit(1)
