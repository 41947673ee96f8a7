"""Alpha matting quality and speed on composites whose alpha is known.

Composites (tests/synthetic_mattes.py): a soft-edged subject with hair-like strands, drawn at 4x and
averaged down, over gradient, noise and stripe backgrounds, reproducible from their seeds. The
segmenter's mask is the subject's mostly-opaque pixels. For each method: SAD (sum of absolute alpha
errors, in thousands of pixels, as the matting literature reports it) and MSE against the true alpha,
and seconds per megapixel of the crop the solver works on (`compute_matte` never sees the rest).

Methods: the hard mask; the feathered mask (the --background edge without --matte: grow 8, feather 8);
pymatting's closed-form matting as the default backend solves it (`pymatting-fast`: Jacobi-preconditioned, loose
tolerance, blur-fusion colours) and exactly (`pymatting`: incomplete Cholesky, tolerance 1e-7, multilevel colours;
what --matte did first and what its recipes replay with); pymatting's large-kernel matting was both worse and
~5x slower here, so it is not offered; and, for time only, the ViTMatte backend (`--matte-backend vitmatte-small`) at
ViTMatte-S's real size (25.8M parameters) with random weights, through `compute_matte` like pymatting (its
processor, the network, the same foreground estimation): random weights make its SAD meaningless.
Target: the default backend's SAD at least 40 % below the feathered mask's (the ratio of their mean SADs <= 0.60),
at under 2 s per megapixel on this CPU. Seconds per megapixel count the whole `compute_matte` (trimap, Laplacian,
solve, colours); not pymatting's import (~0.7 s per process: numba loads its compiled functions then), which a
warm-up call pays before timing starts.

    python benchmarks/matting.py [--size 512] [--seeds 3] [--no-vitmatte] [--smoke]

`--smoke` runs one 128 px composite per background: it checks the script, it measures nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402

from editanything.matte import compute_matte, get_matter  # noqa: E402
from synthetic_mattes import BACKGROUNDS, composite, feathered_alpha, segmenter_mask  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="composite side in pixels (default 512)")
    parser.add_argument("--seeds", type=int, default=3, help="composites per background (default 3)")
    parser.add_argument("--no-vitmatte", action="store_true", help="skip timing ViTMatte-S (the slowest part)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script, measures nothing")
    args = parser.parse_args()
    size, seeds = (128, 1) if args.smoke else (args.size, args.seeds)
    print(f"load average (1, 5, 15 min) {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores"
          f"{' [smoke]' if args.smoke else ''}")
    methods = {"hard mask": None, "feathered mask": None, "pymatting-fast": get_matter("pymatting-fast"),
               "pymatting": get_matter("pymatting")}
    sad = {m: [] for m in methods}
    mse = {m: [] for m in methods}
    speed = {m: [] for m in methods}
    for name in ("pymatting-fast", "pymatting"):  # the first call pays for loading numba's functions; not timed
        compute_matte(*_warm_up(), methods[name])
    vitmatte = None if args.no_vitmatte else _vitmatte(args.smoke)
    if vitmatte is not None:
        compute_matte(*_warm_up(), vitmatte)
    vit_speed = []
    for background in BACKGROUNDS:
        for seed in range(seeds):
            image, truth, _ = composite((size, size), seed=seed, background=background)
            mask = segmenter_mask(truth)
            for name, matter in methods.items():
                if matter is None:
                    alpha = mask.astype(np.float32) if name == "hard mask" else feathered_alpha(mask)
                else:
                    start = time.perf_counter()
                    matte = compute_matte(image, mask, matter)
                    seconds = time.perf_counter() - start
                    alpha = matte.alpha_image(image.shape) / 255.0
                    speed[name].append(seconds / (matte.alpha.size / 1e6))
                    if vitmatte is not None and name == "pymatting":
                        start = time.perf_counter()
                        timed = compute_matte(image, mask, vitmatte)
                        vit_speed.append((time.perf_counter() - start) / (timed.alpha.size / 1e6))
                sad[name].append(np.abs(alpha - truth).sum() / 1000)
                mse[name].append(float(((alpha - truth) ** 2).mean()))
    print(f"{len(BACKGROUNDS) * seeds} composites of {size}x{size} ({', '.join(BACKGROUNDS)})")
    print(f"{'method':16s} {'SAD (k)':>8s} {'MSE':>9s} {'s/MP of crop':>13s}")
    for name in methods:
        per_mp = f"{statistics.mean(speed[name]):.2f}" if speed[name] else "-"
        print(f"{name:16s} {statistics.mean(sad[name]):8.2f} {statistics.mean(mse[name]):9.5f} {per_mp:>13s}")
    if vit_speed:
        print(f"{'ViTMatte-S':16s} {'-':>8s} {'-':>9s} {statistics.mean(vit_speed):13.2f}  (random weights: time only)")
    else:
        print(f"ViTMatte-S: not timed ({'--no-vitmatte' if args.no_vitmatte else 'transformers or torch is not installed'})")
    for name in ("pymatting-fast", "pymatting"):
        ratio = statistics.mean(sad[name]) / statistics.mean(sad["feathered mask"])
        print(f"{name} / feathered SAD = {ratio:.2f} (target <= 0.60), {statistics.mean(speed[name]):.2f} s/MP"
              f"{' (target < 2)' if name == 'pymatting-fast' else ''}{' [smoke]' if args.smoke else ''}")
    print(f"load average after {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


def _vitmatte(smoke: bool):
    """The ViTMatte backend around transformers' VitMatteForImageMatting with ViTMatte-S's configuration (the
    tests' tiny one for --smoke) and random weights, or None without transformers."""
    try:
        import torch
        from transformers import VitDetConfig, VitMatteConfig, VitMatteForImageMatting, VitMatteImageProcessor
    except ImportError:
        return None
    from editanything.matte.vitmatte_backend import VitMatte

    if smoke:
        from tiny_hf_models import tiny_vitmatte_config

        config = tiny_vitmatte_config()
    else:  # hustvl/vitmatte-small-composition-1k's config.json
        backbone = VitDetConfig(hidden_size=384, num_attention_heads=6, num_hidden_layers=12, mlp_ratio=4,
                                window_size=14, window_block_indices=[0, 1, 3, 4, 6, 7, 9, 10],
                                residual_block_indices=[2, 5, 8, 11], use_relative_position_embeddings=True,
                                image_size=512, pretrain_image_size=224, num_channels=4, out_features=["stage12"])
        config = VitMatteConfig(backbone_config=backbone, hidden_size=384, fusion_hidden_sizes=[256, 128, 64, 32],
                                convstream_hidden_sizes=[48, 96, 192])
    torch.manual_seed(0)
    return VitMatte(VitMatteForImageMatting(config).eval(), VitMatteImageProcessor(), name="vitmatte-small")


def _warm_up() -> tuple[np.ndarray, np.ndarray]:
    image, truth, _ = composite((48, 48), seed=0)
    return image, segmenter_mask(truth)


if __name__ == "__main__":
    sys.exit(main())
