"""Click-to-mask latency of SamSegmenter and its image-embedding cache, measured side by side in one run.

Model: real-size SAM vit_b with random weights (`sam_model_registry["vit_b"](checkpoint=None)`, no
download; random weights cost the same time as trained ones), fp32 on the CPU unless a device is given.
Image: a demo photo upscaled to `--size` px on its long side (the encoder always sees 1024 px; the
hash and the mask upsampling see the full size).

Printed (medians over `--clicks` prompts, each timed once per path, the paths interleaved):
- first click: content hash + image encoder + decoder, what every click would cost without the cache;
- cached click: `SamSegmenter.segment` on the same image (hash + cache hit + decoder + Detections),
  with the mask decoder on ONNX Runtime (the default on a CPU) and with the stock PyTorch decoder;
- bare decoder: `SamPredictor.predict` on the same prompt with the embedding already set (the floor),
  with each decoder;
- switch back: a click on the first image right after one on a second, cached image (embedding restored);
- the hash alone, and peak RSS.
Targets: cached click <= 1.2x the bare decoder; >= 100x faster than re-encoding per click.
Also printed: how much faster a click is with the decoder on ONNX Runtime than on PyTorch.

    python benchmarks/click_latency.py [--clicks 20] [--image demos/rocket.jpg] [--size 1600] [--device cpu] [--smoke]

`--smoke` runs the tests' toy-size SAM on a 320 px photo for 3 clicks: it checks the script, it measures nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from editanything.imageio import read_image  # noqa: E402
from editanything.models import pick_device  # noqa: E402
from editanything.segment import SamSegmenter  # noqa: E402
from editanything.types import image_key  # noqa: E402
from editanything.types import Prompt  # noqa: E402


def load(path: Path, long_side: int) -> np.ndarray:
    img = read_image(path)
    f = long_side / max(img.shape[:2])
    return cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)


def prompts(shape: tuple[int, ...], n: int, seed: int = 0) -> list[Prompt]:
    """Clicks as a user makes them: one click, then two or three (some negative)."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    out = []
    for i in range(n):
        k = 1 + i % 3
        pts = [(float(rng.uniform(0, w - 1)), float(rng.uniform(0, h - 1)), int(j == 0 or rng.random() < 0.6))
               for j in range(k)]
        out.append(Prompt(points=pts))
    return out


def bare(segmenter: SamSegmenter, pts: np.ndarray) -> None:
    """The stock predictor alone on the active embedding, with the segmenter's decoder."""
    with segmenter.decoding():
        segmenter.predictor.predict(pts[:, :2], pts[:, 2].astype(np.int64), multimask_output=False)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--image", type=Path, default=ROOT / "demos" / "rocket.jpg")
    ap.add_argument("--other", type=Path, default=ROOT / "demos" / "coffee.jpg")
    ap.add_argument("--size", type=int, default=1600, help="long side of the test image, px")
    ap.add_argument("--device", default=None)
    ap.add_argument("--smoke", action="store_true", help="a toy SAM, a small photo: checks the script, measures nothing")
    args = ap.parse_args()
    if args.smoke:
        args.clicks, args.size = 3, 320

    import torch
    from segment_anything import sam_model_registry

    device = pick_device(args.device)
    torch.manual_seed(0)
    t_build = time.perf_counter()
    if args.smoke:
        from tiny_models import build_tiny_sam

        model, label = build_tiny_sam().to(device), "toy-size SAM (smoke)"
    else:
        model, label = sam_model_registry["vit_b"](checkpoint=None).to(device), "SAM vit_b"
    t_build = time.perf_counter() - t_build
    seg = SamSegmenter(model, name=f"{label} (random weights)")
    stock_seg = SamSegmenter(model, name=f"{label} (random weights)", decoder="torch")  # same weights
    image, other = load(args.image, args.size), load(args.other, args.size)
    clicks = prompts(image.shape, args.clicks)
    print(f"{label}, random weights, {device}, {seg.dtype}, torch threads {torch.get_num_threads()}; "
          f"image {image.shape[1]}x{image.shape[0]}; {args.clicks} clicks; model built in {t_build:.1f} s; "
          f"decoder: {seg.decoder}")

    first = timed(lambda: seg.segment(image, clicks[0]))
    stock_seg.prepare(image)
    paths = {"ours": [], "ours, PyTorch decoder": [], "bare": [], "bare, PyTorch decoder": []}
    for i, prompt in enumerate(clicks):
        pts = np.asarray(prompt.points, np.float32)

        runs = {"ours": lambda p=prompt: seg.segment(image, p),
                "ours, PyTorch decoder": lambda p=prompt: stock_seg.segment(image, p),
                "bare": lambda: bare(seg, pts), "bare, PyTorch decoder": lambda: bare(stock_seg, pts)}
        # Rotate which path runs first so none always gets the warmer caches.
        order = list(runs)[i % 4:] + list(runs)[:i % 4]
        for name in order:
            paths[name].append(timed(runs[name]))
    cached, bare_times = paths["ours"], paths["bare"]

    other_first = timed(lambda: seg.segment(other, clicks[0]))
    switch, bare_after_switch = [], []
    for prompt in clicks[: max(3, args.clicks // 2)]:
        pts = np.asarray(prompt.points, np.float32)
        seg.segment(other, prompt)  # the other image is active now (a cache hit)
        switch.append(timed(lambda p=prompt: seg.segment(image, p)))
        bare_after_switch.append(timed(lambda: bare(seg, pts)))
    hashing = [timed(lambda: image_key(image)) for _ in range(20)]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    med = statistics.median
    c, b = med(cached), med(bare_times)
    c_torch, b_torch = med(paths["ours, PyTorch decoder"]), med(paths["bare, PyTorch decoder"])
    print(f"{'first click (encoder + decoder)':34s} {first * 1000:10.1f} ms")
    print(f"{'first click, second image':34s} {other_first * 1000:10.1f} ms")
    labels = {"ours": "cached click (SamSegmenter)", "ours, PyTorch decoder": "cached click, PyTorch decoder",
              "bare": "bare SamPredictor.predict", "bare, PyTorch decoder": "bare predict, PyTorch decoder"}
    for name, times in paths.items():
        print(f"{labels[name]:34s} {med(times) * 1000:10.1f} ms   (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})")
    print(f"{'click after switching back':34s} {med(switch) * 1000:10.1f} ms   "
          f"(bare decoder in the same rounds {med(bare_after_switch) * 1000:.1f} ms)")
    print(f"{'content hash alone':34s} {med(hashing) * 1000:10.2f} ms")
    print(f"{'peak RSS':34s} {peak_mb:10.0f} MB")
    print(f"{'load average (1, 5, 15 min)':34s} {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    ok1, ok2 = max(c / b, c_torch / b_torch) <= 1.2, first / c >= 100
    print(f"cached / bare decoder = {c / b:.2f}x ({seg.decoder}), {c_torch / b_torch:.2f}x (PyTorch) "
          f"(target <= 1.2x: {'met' if ok1 else 'MISSED'})")
    print(f"re-encoding per click / cached = {first / c:.0f}x (target >= 100x: {'met' if ok2 else 'MISSED'})")
    print(f"switch back / bare decoder = {med(switch) / med(bare_after_switch):.2f}x")
    print(f"cached click, PyTorch / {seg.decoder} decoder = {c_torch / c:.2f}x faster")


if __name__ == "__main__":
    main()
