"""Batch engines side by side: the local process pool vs Ray Data on the same sketch job, in one run.

Photos: N 1024x768 JPEGs made from the demo photos (as in sketch_throughput.py). Printed: images/s
of the pencil sketch on the local pool and on a local Ray with as many CPUs (the ratio; target
Ray >= 0.8x the pool), Ray's start-up seconds, and images/s on a simulated two-node cluster
(`ray.cluster_utils.Cluster`, 1 CPU per node) on this machine. The outputs of every run are
checked byte for byte against the pool's. The load average is printed: others may share the CPUs.

    python benchmarks/batch_engines.py [--n 500] [--workers N] [--smoke]

`--smoke` runs 4 photos of 256x192 on 2 workers: it checks the script (Ray included), it measures nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--smoke", action="store_true", help="a few photos: checks the script, measures nothing")
    args = ap.parse_args()
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
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
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
