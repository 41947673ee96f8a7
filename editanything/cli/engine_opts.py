"""`--engine`, `--ray-address`, `--gpus-per-worker`, `--nice`: where a batch command's jobs run, and at what priority."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..engines import ENGINES, get_engine
from ..engines.priority import DEFAULT_NICE, ENV, MAX_NICE, batch_nice
from ..engines.ray import HEAVY_CPUS
from ..errors import InvalidInputError


def add_engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("where the jobs run")
    g.add_argument("--engine", default="local", choices=list(ENGINES),
                   help="local: processes on this machine (default); ray: actors on a Ray cluster (extra `ray`)")
    g.add_argument("--ray-address", metavar="ADDRESS",
                   help="the Ray cluster to join (default: RAY_ADDRESS if set, else a local Ray for this run)")
    g.add_argument("--gpus-per-worker", type=float, metavar="N",
                   help="GPUs each Ray worker asks for (fractions allowed, e.g. 0.5); default: CPU workers")
    g.add_argument("--cpus-per-worker", type=int, metavar="N",
                   help=f"CPUs (and threads) each Ray CPU worker asks for, so fewer model copies load "
                        f"(default: 1; {HEAVY_CPUS} for the sd-lineart sketch style and for edits "
                        f"with a local diffusion model)")
    g.add_argument("--nice", type=int, metavar="N",
                   help=f"niceness of the worker processes and Ray actors, 0 (as this command) to {MAX_NICE}, so "
                        f"interactive work on the machine (the UI's clicks) goes first (default: {ENV}, else "
                        f"{DEFAULT_NICE}; a batch that runs in this process, with one local worker, keeps this "
                        f"command's priority)")


def engine_from_args(args: argparse.Namespace, workers: int | None, heavy: bool = False) -> Any:
    """"local", or a Ray engine built from the options (kept, so the nodes it used can be told after).

    `heavy`: the job loads a diffusion model, so CPU actors default to HEAVY_CPUS CPUs each."""
    batch_nice(args.nice)  # a bad --nice or EDITANYTHING_BATCH_NICE stops here, before anything loads
    if args.engine == "local":
        if args.ray_address is not None or args.gpus_per_worker is not None or args.cpus_per_worker is not None:
            raise InvalidInputError("--ray-address, --gpus-per-worker and --cpus-per-worker need --engine ray")
        return "local"
    cpus = args.cpus_per_worker if args.cpus_per_worker is not None else (HEAVY_CPUS if heavy else None)
    return get_engine(args.engine, workers=workers, address=args.ray_address, gpus_per_worker=args.gpus_per_worker,
                      cpus_per_worker=cpus, nice=args.nice)


def print_engine(engine: Any) -> None:
    """After a Ray run: on how many nodes the jobs ran."""
    nodes = getattr(engine, "nodes", None)
    if nodes:
        print(f"ray: jobs ran on {len(nodes)} node{'s' if len(nodes) != 1 else ''}", file=sys.stderr)
