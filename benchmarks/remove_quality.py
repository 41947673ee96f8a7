"""How well each remover fills holes whose true background is known, on real photos.

On every photo (long side scaled down to 512 px) it cuts holes of three shapes (box, ellipse,
brush stroke) at three sizes (about 2 %, 6 % and 15 % of the photo) where nothing was removed,
fills them through `compose.edit_region` (the crop the product works on, no grow or feather), and
compares the fill with the photo: PSNR and SSIM inside the hole, and the seconds per fill.

Methods: OpenCV Telea (the weight-free default) and Navier-Stokes, xphoto's FSR when OpenCV has
the contrib modules, and every learned remover present (LaMa, MI-GAN from `checkpoints/`, or any
given with `--model`).

Photos (40, all real): demos/, scikit-image's bundled data (`pip install scikit-image==0.26.0`) and
OpenCV's sample photos (Debian's `opencv-doc`); `make bench-remove` installs both and runs this.

    python benchmarks/remove_quality.py [--model lama=PATH.onnx] [--model migan=PATH.onnx] [--limit N] [--smoke]

`--smoke` fills the holes of 2 demo photos at 256 px: it checks the script, it measures nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from editanything import compose, read_image  # noqa: E402
from editanything.generate import ClassicalGenerator, Generated, GenerationParams, get_generator  # noqa: E402
from editanything.generate.removal import REMOVERS, get_remover  # noqa: E402
from editanything.models import find_model  # noqa: E402

OPENCV_DOC = Path("/usr/share/doc/opencv-doc/examples")
# Real photos only: logos, renders, paintings, chart-like images and near-duplicate pairs are left out.
OPENCV_PHOTOS = ("aero1", "aero3", "aloeL", "apple", "baboon", "basketball1", "board", "box_in_scene", "building",
                 "butterfly", "chicky_512", "ela_original", "fruits", "graf1", "home", "leuvenA", "messi5", "orange",
                 "rubberwhale1", "squirrel_cls", "stuff", "sudoku", "left01", "alphamat/input_images/plant")
SKIMAGE_PHOTOS = ("brick", "camera", "coins", "grass", "gravel", "hubble_deep_field", "ihc", "moon",
                  "motorcycle_left", "page", "retina", "text")
MIN_PHOTOS = 30
SIDE = 512
SIZES = {"small": 0.02, "medium": 0.06, "large": 0.15}  # hole area / photo area
SHAPES = ("box", "ellipse", "stroke")


def _first(folder: Path, stem: str) -> Path | None:
    return next((p for p in sorted(folder.glob(f"{stem}.*")) if p.suffix.lower() in (".jpg", ".png")), None)


def photo_files() -> list[Path]:
    """The real photos available here: demos/, scikit-image's data, OpenCV's samples."""
    files = sorted((ROOT / "demos").glob("*.jpg"))
    spec = importlib.util.find_spec("skimage")  # found, not imported: only its data folder is read
    if spec is not None and spec.submodule_search_locations:
        data = Path(list(spec.submodule_search_locations)[0]) / "data"
        files += [f for f in (_first(data, s) for s in SKIMAGE_PHOTOS) if f is not None]
    if OPENCV_DOC.is_dir():
        for stem in OPENCV_PHOTOS:
            folder = OPENCV_DOC / ("" if "/" in stem else "data")
            found = _first(folder / Path(stem).parent, Path(stem).name)
            if found is not None:
                files.append(found)
    return files


def load(path: Path, side: int = SIDE) -> np.ndarray:
    image = read_image(path)
    scale = side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def holes(shape: tuple[int, int], rng: np.random.Generator) -> list[tuple[str, str, np.ndarray]]:
    """(shape, size, mask) for every shape at every size, placed at random inside the photo."""
    h, w = shape
    out = []
    for size, fraction in SIZES.items():
        area = fraction * h * w
        for kind in SHAPES:
            mask = np.zeros((h, w), np.uint8)
            if kind == "box":
                bw = int(np.sqrt(area * rng.uniform(0.6, 1.6)))
                bh = max(4, min(h - 8, int(area / bw)))
                bw = min(w - 8, bw)
                x, y = rng.integers(4, w - bw - 3), rng.integers(4, h - bh - 3)
                mask[y:y + bh, x:x + bw] = 1
            elif kind == "ellipse":
                ax = np.sqrt(area / np.pi * rng.uniform(0.6, 1.6))
                ay = area / np.pi / ax
                ax, ay = min(ax, w / 2 - 6), min(ay, h / 2 - 6)
                cx, cy = rng.uniform(ax + 4, w - ax - 4), rng.uniform(ay + 4, h - ay - 4)
                cv2.ellipse(mask, (int(cx), int(cy)), (int(ax), int(ay)), float(rng.uniform(0, 180)), 0, 360, 1, -1)
            else:  # a brush stroke: a thick random walk, like a user painting over an object
                width = max(6, int(np.sqrt(area) / 5))
                point = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
                while mask.sum() < area:
                    step = rng.normal(0, 1, 2)
                    nxt = np.clip(point + step / np.linalg.norm(step) * width * 1.5, width, [w - width, h - width])
                    cv2.line(mask, tuple(int(v) for v in point), tuple(int(v) for v in nxt), 1, width)
                    point = nxt
            out.append((kind, size, mask.astype(bool)))
    return out


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    mse = float(np.mean((a[mask].astype(np.float64) - b[mask]) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM (Gaussian window, sigma 1.5; the usual constants) over the hole's pixels, channels averaged."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ys, xs = np.nonzero(mask)
    # The window reaches 5 px: a crop 6 px around the hole gives the same values inside it, much faster.
    box = (slice(max(0, ys.min() - 6), ys.max() + 7), slice(max(0, xs.min() - 6), xs.max() + 7))
    x, y, mask = a[box].astype(np.float32), b[box].astype(np.float32), mask[box]

    def blur(v: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(v, (11, 11), 1.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(smap[mask].mean())


class XphotoFill:
    """OpenCV contrib's frequency-selective reconstruction (only when cv2 has the xphoto module)."""

    works_at_any_size = True

    def __init__(self, flag: str):
        self.name, self.flag = f"xphoto-{flag.lower()}", getattr(cv2.xphoto, f"INPAINT_{flag}")

    def inpaint(self, image, mask, params):
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        out = np.zeros_like(bgr)
        cv2.xphoto.inpaint(bgr, (~mask).astype(np.uint8) * 255, out, self.flag)
        return Generated([cv2.cvtColor(out, cv2.COLOR_BGR2RGB)], model={"name": self.name})


def methods(extra: list[str]) -> dict[str, object]:
    found = {"telea": ClassicalGenerator("telea"), "ns": ClassicalGenerator("ns")}
    if hasattr(cv2, "xphoto"):
        found["xphoto-fsr_fast"] = XphotoFill("FSR_FAST")
    for name in REMOVERS:
        if find_model(name) is not None:
            found[name] = get_generator(name)
    for item in extra:
        kind, sep, path = item.partition("=")
        if not sep or kind not in REMOVERS:
            raise SystemExit(f"--model expects lama=PATH.onnx or migan=PATH.onnx; got {item!r}")
        found[kind] = get_remover(path, kind=kind)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="KIND=PATH",
                        help="a LaMa or MI-GAN .onnx file to compare too (lama=… or migan=…)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos (default: all)")
    parser.add_argument("--smoke", action="store_true", help="2 demo photos: checks the script, measures nothing")
    args = parser.parse_args()
    side = 256 if args.smoke else SIDE
    if args.smoke:
        args.limit = 2

    files = photo_files()
    if len(files) < MIN_PHOTOS and not args.smoke:
        print(f"only {len(files)} real photos found (need {MIN_PHOTOS}); get scikit-image's and OpenCV's sample "
              "photos with: make bench-remove (pip install scikit-image==0.26.0; apt-get install opencv-doc)")
        return 2
    files = files[: args.limit] if args.limit else files
    fills = methods(args.model)
    params = GenerationParams(seed=0)
    rng = np.random.default_rng(0)
    rows: dict[str, list[tuple[str, str, float, float, float]]] = {name: [] for name in fills}
    start = time.perf_counter()
    for path in files:
        image = load(path, side)
        for kind, size, mask in holes(image.shape[:2], rng):
            for name, generator in fills.items():
                t0 = time.perf_counter()
                out = compose.edit_region(image, mask, generator, params, grow_px=0, feather_px=0).images[0]
                seconds = time.perf_counter() - t0
                rows[name].append((kind, size, psnr(out, image, mask), ssim(out, image, mask), seconds))
    n_holes = len(rows["telea"])
    print(f"{len(files)} real photos (long side <= {side} px), {n_holes} holes each filled by {len(fills)} methods "
          f"in {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
          f"{' [smoke]' if args.smoke else ''}\n")
    telea = statistics.mean(r[2] for r in rows["telea"])
    header = (f"{'method':16} {'PSNR dB':>8} {'vs Telea':>9} {'SSIM':>6}  "
              + " ".join(f"{s:>7}" for s in SIZES) + "  " + " ".join(f"{s:>7}" for s in SHAPES) + f"  {'s/fill':>8}")
    print(header + "\n" + "-" * len(header))
    for name, data in rows.items():
        mean_psnr = statistics.mean(r[2] for r in data)
        by_size = [statistics.mean(r[2] for r in data if r[1] == s) for s in SIZES]
        by_shape = [statistics.mean(r[2] for r in data if r[0] == s) for s in SHAPES]
        print(f"{name:16} {mean_psnr:8.2f} {mean_psnr - telea:+9.2f} {statistics.mean(r[3] for r in data):6.3f}  "
              + " ".join(f"{v:7.2f}" for v in by_size) + "  " + " ".join(f"{v:7.2f}" for v in by_shape)
              + f"  {statistics.median(r[4] for r in data):8.4f}")
    best = max(rows, key=lambda name: statistics.mean(r[2] for r in rows[name]))
    print(f"\nbest / Telea: {best}, {statistics.mean(r[2] for r in rows[best]) - telea:+.2f} dB PSNR")
    print("PSNR and SSIM are inside the hole only; the columns by size and shape are PSNR (dB).")
    missing = [name for name in REMOVERS if name not in fills]
    if missing:
        print("Not compared (no weights here): " + ", ".join(missing) + ". With real weights: "
              + "; ".join(f"editanything models download {m}" for m in missing)
              + ", then run this again (or pass --model lama=PATH.onnx / --model migan=PATH.onnx).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
