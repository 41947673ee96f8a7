"""Where planned batch jobs run. The planner (`batch.py`) decides what to do; an engine does it.

An engine takes the jobs still to do and a picklable `work(source, output)` function and yields
`(job, error)` as each job ends (`error` is None on success, else one line). Every engine runs the
same `work`, so the same job writes the same bytes whichever engine ran it.

- `local`: a process pool on this machine (the default; no extra packages).
- `ray`: Ray Data actors on a Ray cluster, or on a local Ray started for the run (extra `ray`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol, Sequence

from ..errors import InvalidInputError
from .base import attempt

__all__ = ["ENGINES", "Engine", "attempt", "get_engine"]


class Engine(Protocol):
    name: str

    def run(self, jobs: Sequence[Any], work: Callable[..., Any]) -> Iterator[tuple[Any, str | None]]:
        """Run `work(job.source, job.output)` for every job; yield (job, None | one-line reason) as each ends."""
        ...


def _local(**options: Any) -> Engine:
    from .local import LocalEngine

    return LocalEngine(**options)


def _ray(**options: Any) -> Engine:
    from .ray import RayEngine  # imports ray only when asked for

    return RayEngine(**options)


ENGINES: dict[str, Callable[..., Engine]] = {"local": _local, "ray": _ray}


def get_engine(engine: str | Engine, **options: Any) -> Engine:
    """An engine by name (options go to its constructor), or `engine` itself when it is one already."""
    if not isinstance(engine, str):
        return engine
    if engine not in ENGINES:
        raise InvalidInputError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    return ENGINES[engine](**options)
