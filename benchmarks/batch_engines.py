"""Batch engines side by side: the local process pool vs Ray Data on the same sketch job, in one run.

Photos: N 1024x768 JPEGs made from the demo photos (as in sketch_throughput.py). Printed: images/s
of the pencil sketch on the local pool and on a local Ray with as many CPUs (the ratio; target
Ray >= 0.8x the pool), Ray's start-up seconds, and images/s on a simulated two-node cluster
(`ray.cluster_utils.Cluster`, 1 CPU per node) on this machine. The outputs of every run are
checked byte for byte against the pool's. The load average is printed: others may share the CPUs.

    python benchmarks/batch_engines.py [--n 500] [--workers N] [--smoke]

`--scale N` is about an archive instead: N tiny 64x64 photos (hard links to a few files) in pencil,
whose drawing costs next to nothing, so what is timed is each engine's own cost. Each engine runs in a
process of its own (a local Ray started before the clock); printed per engine: the driver's peak RSS,
the seconds of planning (from the call until the engine gets the jobs), ms per file of the run (the
per-file overhead), and, with every second output deleted, the seconds a resumed run takes to re-plan.
Targets at N = 100,000: Ray's driver RSS < 1.5 GB, its per-file overhead <= 1.5x the local pool's,
the re-plan < 30 s.

    python benchmarks/batch_engines.py --scale 100000 [--workers N]

`--smoke` runs 4 photos of 256x192 on 2 workers (with `--scale`: 64 photos): it checks the script (Ray
included), it measures nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from editanything.batch import default_workers, sketch_folder  # noqa: E402
from sketch_throughput import make_photos  # noqa: E402


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def timed_sketch(photos: list[Path], out: Path, **options) -> float:
    start = time.perf_counter()
    report = sketch_folder(photos, out, style="pencil", progress=False, **options)
    seconds = time.perf_counter() - start
    assert report.ok and len(report.done) == len(photos), report.summary()
    return seconds


class Clocked:
    """An engine that notes when it got the jobs (planning ends there); `dry` runs none of them."""

    def __init__(self, engine, dry: bool = False) -> None:
        self.engine, self.dry, self.name = engine, dry, engine.name
        self.started, self.jobs = None, 0

    def run(self, jobs, work):
        self.started, self.jobs = time.perf_counter(), len(jobs)
        if not self.dry:
            yield from self.engine.run(jobs, work)


def tiny_archive(folder: Path, n: int) -> None:
    """n 64x64 JPEGs: 16 distinct ones, the rest hard links to them (the files are not what is measured)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    distinct = []
    for i in range(16):
        path = folder / f"p{i:06d}.jpg"
        cv2.imwrite(str(path), cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (5, 5), 0))
        distinct.append(path)
    for i in range(16, n):
        os.link(distinct[i % 16], folder / f"p{i:06d}.jpg")


def scale_one(engine_name: str, work: Path, workers: int) -> dict:
    """One engine in this process: plan + run the archive, then re-plan it with every second output gone."""
    from editanything.engines import get_engine

    if engine_name == "ray":
        import ray

        ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
        engine = get_engine("ray")
    else:
        engine = get_engine("local", workers=workers, cores=workers)
    out = work / engine_name
    clocked = Clocked(engine)
    start = time.perf_counter()
    report = sketch_folder([work / "in"], out, style="pencil", engine=clocked, progress=False)
    end = time.perf_counter()
    assert report.ok and len(report.done) == clocked.jobs, report.summary()
    outputs = sorted(out.iterdir())
    for path in outputs[::2]:
        path.unlink()
    resumed = Clocked(engine, dry=True)
    again = time.perf_counter()
    sketch_folder([work / "in"], out, style="pencil", engine=resumed, progress=False)
    assert resumed.jobs == len(outputs[::2]), (resumed.jobs, len(outputs))
    return {"plan_s": clocked.started - start, "run_s": end - clocked.started, "files": clocked.jobs,
            "replan_s": resumed.started - again, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def scale(n: int, workers: int, smoke: bool) -> int:
    work = Path(tempfile.mkdtemp(prefix="engines-scale-"))
    try:
        tiny_archive(work / "in", n)
        load = os.getloadavg()[0]
        results = {}
        for engine in ("local", "ray"):
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
            run = subprocess.run([sys.executable, __file__, "--scale-one", engine, "--dir", str(work),
                                  "--workers", str(workers)], capture_output=True, text=True, env=env)
            if run.returncode:
                raise SystemExit(f"{engine} failed:\n{run.stderr[-3000:]}")
            results[engine] = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"{n} photos 64x64 JPEG -> pencil PNG, {workers} workers on {default_workers()} cores "
              f"(load average {load:.1f} at start){' [smoke]' if smoke else ''}")
        print(f"\n{'engine':8} {'driver peak RSS':>16} {'planning':>9} {'run':>8} {'per file':>9} {'resume re-plan':>15}")
        for name, r in results.items():
            print(f"{name:8} {r['rss_mb']:13.0f} MB {r['plan_s']:8.1f}s {r['run_s']:7.1f}s "
                  f"{r['run_s'] / r['files'] * 1000:7.2f}ms {r['replan_s']:14.1f}s")
        pool, ray_ = (results[e]["run_s"] / results[e]["files"] for e in ("local", "ray"))
        big = n >= 100_000
        print(f"\nray / pool per-file overhead = {ray_ / pool:.2f}x (target <= 1.5x); ray driver peak RSS "
              f"{results['ray']['rss_mb'] / 1024:.2f} GB (target < 1.5 GB{'' if big else ' at 100,000'}); resume "
              f"re-plan {max(r['replan_s'] for r in results.values()):.1f} s (target < 30 s{'' if big else ' at 100,000'}); "
              f"load average {os.getloadavg()[0]:.1f} at the end")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--scale", type=int, metavar="N", help="N tiny photos: each engine's own cost at scale")
    ap.add_argument("--smoke", action="store_true", help="a few photos: checks the script, measures nothing")
    ap.add_argument("--scale-one", choices=("local", "ray"), help=argparse.SUPPRESS)  # internal: one engine
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scale_one:
        print(json.dumps(scale_one(args.scale_one, Path(args.dir), args.workers)))
        return 0
    if args.scale:
        return scale(64 if args.smoke else args.scale, 2 if args.smoke else args.workers, args.smoke)
    if args.smoke:
        args.n, args.workers = 4, 2
    import ray
    from ray.cluster_utils import Cluster

    cv2.setNumThreads(1)  # the workers use every core; the parent must not compete
    work = Path(tempfile.mkdtemp(prefix="engines-bench-"))
    try:
        (work / "in").mkdir()
        size = (256, 192) if args.smoke else (1024, 768)
        photos = make_photos(work / "in", args.n, size)
        load = os.getloadavg()[0]
        print(f"{args.n} photos {size[0]}x{size[1]} JPEG -> pencil PNG, {args.workers} workers on {default_workers()} cores "
              f"(load average {load:.1f} at start){' [smoke]' if args.smoke else ''}")

        pool_s = timed_sketch(photos, work / "pool", workers=args.workers)
        expected = tree(work / "pool")

        start = time.perf_counter()
        ray.init(address="local", num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
        startup = time.perf_counter() - start
        try:
            ray_s = timed_sketch(photos, work / "ray", engine="ray")
        finally:
            ray.shutdown()
        assert tree(work / "ray") == expected, "Ray's outputs differ from the pool's"

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        try:
            cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.WARNING)
            two_s = timed_sketch(photos, work / "two", engine="ray")
            ray.shutdown()
        finally:
            cluster.shutdown()
        assert tree(work / "two") == expected, "the two-node run's outputs differ from the pool's"

        n = args.n
        print(f"\n{'engine':36} {'seconds':>8} {'img/s':>8}")
        print(f"{'local process pool':36} {pool_s:8.1f} {n / pool_s:8.1f}")
        print(f"{'ray, local (actor start included)':36} {ray_s:8.1f} {n / ray_s:8.1f}")
        print(f"{'ray, 2 simulated nodes x 1 CPU':36} {two_s:8.1f} {n / two_s:8.1f}")
        print(f"\nray / pool = {pool_s / ray_s:.2f}x (target >= 0.8x); ray.init start-up {startup:.1f} s "
              f"(not in the run times); outputs byte-identical; load average {os.getloadavg()[0]:.1f} at the end")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
