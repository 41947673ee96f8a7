"""The cluster engine: Ray Data runs the jobs on actors, so models load once per actor, not per image.

Every node must see the input and output paths (a shared filesystem, or URIs such as s3://… with
credentials on every node) and have editanything installed with the extras the job needs. A job is
one dataset row; its worker writes the output itself (atomically), and only (index, error, node)
travel back to the driver.

At scale (an archive of 100,000 photos) the driver holds no row per job: the jobs go into the object
store once, as one table (every job pickled into one byte array, with offsets), which each actor maps
without a copy; the dataset is just their numbers, in blocks of many rows. A block whose worker dies
fails all its rows, so those rows run again one per block, where a crash can only be their own: a
file that keeps killing its worker fails alone.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import re
import socket
import time
import warnings
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Sequence

from ..errors import InvalidInputError, MissingDependency
from .base import attempt, limit_threads
from .priority import batch_nice, lower_priority

# A worker that dies on the same file this many more times fails that file (instead of looping forever).
TASK_RETRIES = 3
START_TIMEOUT_S = 600
# An explicit cluster address must answer this fast; else ray.init would retry it for minutes.
REACH_TIMEOUT_S = 5
BLOCK_ROWS = 1024  # most jobs in one block: each block costs Ray Data ~80 ms of scheduling (measured at 20k files); results still stream
HEAVY_CPUS = 4  # CPUs per actor for jobs that load Stable Diffusion: one model copy per 4 CPUs, not per CPU
_CONTEXT = ("enable_progress_bars", "max_errored_blocks", "wait_for_min_actors_s")  # what a run changes


class RayEngine:
    """Jobs on a Ray cluster: `address` ("auto", "ray://…", host:port; None = RAY_ADDRESS if set, else a
    private local Ray started for the run, never one already running on the machine); `workers` actors
    (default: as many as fit the cluster); `gpus_per_worker` > 0 asks each actor for that share of a GPU;
    else each asks for `cpus_per_worker` CPUs (default 1, at most what the largest node has) and runs that
    many threads, so a job that loads a diffusion model keeps one copy per few CPUs instead of one per CPU.
    Each actor's process runs at niceness `nice` (None: `priority.batch_nice()`), as the local pool's do."""

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None,
                 gpus_per_worker: float | None = None, cpus_per_worker: int | None = None,
                 nice: int | None = None) -> None:
        if gpus_per_worker is not None and not gpus_per_worker > 0:
            raise InvalidInputError(f"--gpus-per-worker must be above 0 (fractions allowed); got {gpus_per_worker}")
        if cpus_per_worker is not None and (isinstance(cpus_per_worker, bool) or not isinstance(cpus_per_worker, int)
                                            or cpus_per_worker < 1):
            raise InvalidInputError(f"--cpus-per-worker must be a whole number >= 1; got {cpus_per_worker!r}")
        self.workers = workers
        self.address = address
        self.gpus_per_worker = gpus_per_worker
        self.cpus_per_worker = cpus_per_worker
        self.nice = batch_nice(nice)
        self.nodes: set[str] = set()  # the nodes that ran jobs in the last run

    def run(self, jobs: Sequence[Any], work: Callable[..., Any]) -> Iterator[tuple[Any, str | None]]:
        if not jobs:
            return
        ray = _import_ray()
        started = self._connect(ray)
        try:
            yield from self._run(ray, jobs, work)
        finally:
            if started:
                ray.shutdown()

    def _connect(self, ray) -> bool:
        """Join the cluster named, or start a private local Ray; True when this call connected, so it
        disconnects (and a private Ray stops) at the end."""
        # Ray's own default (None) joins whatever cluster it finds on the machine, another user's too:
        # joining one takes an explicit address, else "local" starts a new one for this run.
        address = self.address or ("auto" if os.environ.get("RAY_ADDRESS") else "local")
        check_reachable(address)
        if ray.is_initialized():
            return False
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        except ConnectionError as exc:
            # Ray sends its token only where RAY_AUTH_MODE=token says (never on its own to an address named)
            token = "" if os.environ.get("RAY_AUTH_MODE", "").lower() == "token" else (
                "; if the cluster uses token authentication, set RAY_AUTH_MODE=token and give its token "
                "(RAY_AUTH_TOKEN or ~/.ray/auth_token)")
            raise InvalidInputError(f"cannot reach the Ray cluster at {address}: {exc}; start it with "
                                    f"`ray start --head` or pass --ray-address{token}") from None
        except RuntimeError as exc:
            versions = re.findall(r"Ray: (\S+)\s+Python: (\S+)", str(exc))
            if not str(exc).startswith("Version mismatch") or len(versions) != 2:
                raise
            ray.shutdown()  # the failed connect leaves this process half attached
            (ray_there, py_there), (ray_here, py_here) = versions
            raise InvalidInputError(f"the Ray cluster at {address} runs Ray {ray_there} on Python {py_there}, this "
                                    f"machine Ray {ray_here} on Python {py_here}; the driver needs the cluster's "
                                    "versions (install them here, or start a cluster with these)") from None
        return True

    def _cpus(self, ray) -> int:
        """CPUs (and threads) per CPU actor: the option, but no more than the largest node has."""
        largest = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=1)
        return max(1, min(self.cpus_per_worker or 1, largest))

    def _pool_size(self, ray, cpus: int) -> int:
        if self.gpus_per_worker:
            gpus = ray.cluster_resources().get("GPU", 0)
            if gpus < self.gpus_per_worker:
                raise InvalidInputError(f"--gpus-per-worker {self.gpus_per_worker}: the Ray cluster has "
                                        f"{gpus:g} GPUs; drop the option to run on CPUs")
            fit = int(gpus / self.gpus_per_worker + 1e-9)
        else:  # an actor lives on one node: count what fits node by node
            fit = sum(int(n["Resources"].get("CPU", 0)) // cpus for n in ray.nodes() if n.get("Alive"))
        return max(1, min(self.workers or fit, fit))

    def _run(self, ray, jobs: Sequence[Any], work: Callable[..., Any]) -> Iterator[tuple[Any, str | None]]:
        from ray.data import DataContext

        context = DataContext.get_current()
        saved = {name: getattr(context, name) for name in _CONTEXT}
        context.enable_progress_bars = False  # the caller shows one bar over the whole job
        # Start work once every actor is up: else the first one ready takes the whole queue of a short job.
        context.wait_for_min_actors_s = START_TIMEOUT_S
        cpus = None if self.gpus_per_worker else self._cpus(ray)
        size = self._pool_size(ray, cpus)
        # Pickled, so URIs travel as their filesystem (endpoint and options) too, as local paths do as paths.
        table = ray.put(job_table(jobs))
        rows = block_rows(len(jobs), size)
        # Set before a dataset is made (it keeps a copy of the context): a block that fails does not stop the run.
        context.max_errored_blocks = math.ceil(len(jobs) / rows)
        # One try per block of many rows (a crash sends them to the second pass); one row per block retries.
        passes = [(numbered(ray, range(len(jobs)), rows), rows, 0 if rows > 1 else TASK_RETRIES)]
        self.nodes = set()
        seen: set[int] = set()
        data_log = logging.getLogger("ray.data")
        level = data_log.level
        # Its per-run lines would bury the caller's progress bar, and its tracebacks of blocks whose
        # worker kept dying repeat what the report says in one line per file.
        data_log.setLevel(logging.CRITICAL)
        try:
            while passes:
                dataset, rows, retries = passes.pop()
                results = self._map(dataset, work, rows, retries, size, cpus, table)
                for row in results.iter_rows():
                    index = int(row["index"])
                    seen.add(index)
                    self.nodes.add(str(row["node"]))
                    yield jobs[index], (str(row["error"]) or None)
                missing = [i for i in range(len(jobs)) if i not in seen]
                if missing and rows > 1:  # alone, each with its retries: only the file that kills its worker fails
                    context.max_errored_blocks = len(missing)
                    again = numbered(ray, missing, 1)
                    passes.append((again, 1, TASK_RETRIES))
        except ray.exceptions.GetTimeoutError:
            raise InvalidInputError(f"the Ray cluster did not start {size} workers in {START_TIMEOUT_S} s "
                                    "(busy, or short of CPUs/GPUs); pass fewer --workers") from None
        finally:
            data_log.setLevel(level)
            for name, value in saved.items():  # the caller's own Ray Data work keeps its settings
                setattr(context, name, value)
        for index, job in enumerate(jobs):
            if index not in seen:
                yield job, f"its worker died {TASK_RETRIES + 1} times on this file (out of memory?)"

    def _map(self, dataset, work: Callable[..., Any], rows: int, retries: int, size: int, cpus: int | None, table):
        from ray.data import ActorPoolStrategy

        resources = {"num_gpus": self.gpus_per_worker} if self.gpus_per_worker else {"num_cpus": cpus}
        with warnings.catch_warnings():
            # Ray 2.60 deprecates extra remote args, yet they are its only way to bound an actor's task retries
            warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
            return dataset.map_batches(
                # One block in flight per actor: the blocks queued on an actor that dies are retried (and
                # counted) with it, so a file that keeps killing its worker would take good ones down too.
                _Worker, batch_size=rows, compute=ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=1),
                # CPU actors: a thread per CPU asked for, as the local pool's processes (Ray sets OMP_NUM_THREADS alike)
                fn_constructor_kwargs={"work": work, "table": [table], "threads": cpus, "cwd": os.getcwd(),
                                      "nice": self.nice},
                max_restarts=-1, max_task_retries=retries, **resources,
            )


def numbered(ray, indices: Sequence[int], rows: int):
    """A dataset of job numbers (column "data"), `rows` to a block. Put by the driver, not made by tasks
    (a read or a rename): such a task would wait for a CPU that the actor pool holds."""
    import numpy as np

    ids = np.asarray(indices, dtype=np.int64)
    return ray.data.from_numpy([ids[i:i + rows] for i in range(0, len(ids), rows)])


def block_rows(jobs: int, actors: int) -> int:
    """Rows per block: about eight blocks per actor (the last ones spread the tail), at most BLOCK_ROWS."""
    return max(1, min(BLOCK_ROWS, jobs // (actors * 8)))


def job_table(jobs: Sequence[Any]) -> tuple[Any, Any]:
    """(offsets, bytes): job i is pickle.loads(bytes[offsets[i]:offsets[i + 1]]), as (source, output).
    Two numpy arrays: Ray stores them once per node and an actor reads them without copying."""
    import numpy as np

    pickled = [pickle.dumps((job.source, job.output)) for job in jobs]
    offsets = np.zeros(len(pickled) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in pickled], out=offsets[1:])
    return offsets, np.frombuffer(b"".join(pickled), dtype=np.uint8)


class _Worker:
    """One actor: keeps `work`'s process-wide caches (loaded models) across all its jobs."""

    def __init__(self, work: Callable[..., Any], table: list, threads: int | None, cwd: str, nice: int = 0) -> None:
        import ray

        lower_priority(nice)  # before the threads torch and OpenCV start, which take their creator's niceness
        if threads:
            limit_threads(threads)
        # Relative paths mean what they mean to the driver, and `work` sees them as a local run does
        # (an edit's recipe records its input path as given), so the bytes match a local run's.
        if os.path.isdir(cwd):
            os.chdir(cwd)
        self.work = work
        self.offsets, self.table = ray.get(table[0])  # the job table (a reference in a list stays one)
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        errors = []
        for index in batch["data"]:
            start, stop = self.offsets[index], self.offsets[index + 1]
            source, output = pickle.loads(self.table[start:stop])
            errors.append(attempt(self.work, SimpleNamespace(source=source, output=output)) or "")
        return {"index": batch["data"], "error": np.array(errors, dtype=object),
                "node": np.array([self.node] * len(errors), dtype=object)}


def check_reachable(address: str | None) -> None:
    """Fail in seconds, with what to do, when the cluster at `address` (or at RAY_ADDRESS for "auto")
    does not answer as Ray does; None or "local" (a private Ray for the run) needs no check.

    A port that accepts connections is not enough: Ray's head (GCS, HOST:PORT) and its client server
    (ray://HOST:PORT) speak gRPC, so an HTTP/2 SETTINGS frame must come back within REACH_TIMEOUT_S;
    else ray.init would wait on that port for minutes.
    """
    given = os.environ.get("RAY_ADDRESS", "") if address == "auto" else address or ""
    target = given.strip()
    if not target or target in ("auto", "local"):
        return
    hostport = target.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if "://" in hostport or not host or not port.isdigit() or "/" in hostport:
        where = "RAY_ADDRESS" if address == "auto" else "--ray-address"
        raise InvalidInputError(f"{where} {target!r}: expected HOST:PORT (the head's port, 6379 by default), "
                                "ray://HOST:PORT (Ray Client, 10001) or auto; an http:// address is the "
                                "dashboard's, not the cluster's")
    try:
        _grpc_handshake(host.strip("[]"), int(port), REACH_TIMEOUT_S)
    except OSError as exc:
        why = (f"no answer in {REACH_TIMEOUT_S} s" if isinstance(exc, TimeoutError)
               else exc.strerror or str(exc))
        raise InvalidInputError(f"cannot reach the Ray cluster at {target} ({why}); start "
                                "one with `ray start --head`, or check --ray-address and RAY_ADDRESS") from None


_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS


def _grpc_handshake(host: str, port: int, timeout: float) -> None:
    """Connect and exchange HTTP/2 prefaces, all within `timeout` s; OSError when the other side is not
    a gRPC server (what every Ray endpoint is). Skipped past the TCP connect when Ray uses TLS."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
            return
        sock.sendall(_HTTP2_PREFACE)
        head = b""
        while len(head) < 9:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            data = sock.recv(9 - len(head))
            if not data:
                raise OSError(0, "the port closed the connection: not a Ray cluster")
            head += data
        if head[3] != 4:  # a gRPC server's first frame is its SETTINGS
            raise OSError(0, "the port answered, but not as a Ray cluster does (no gRPC)")


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingDependency("the ray engine needs Ray Data: pip install 'editanything[ray]'") from None
    return ray
