"""Crop-mode edit time as the photo grows, with the same mask: the cost should stay flat.

Times `compose.edit_region` (mask bbox, crop, grow/feather, resize, generation, paste back) on
512², 1024², 2048² and 4000x3000 versions of a demo photo, side by side in one run, and prints
each size's time as a ratio of the 512² time. Target: 4000x3000 ≤ 1.3× the 512² time.

Generators: a tiny random-weight Stable Diffusion inpainting pipeline (2 steps; the same code
path as real weights) and the weight-free classical one. `--real` adds a real-size random-weight
SD 1.5 inpainting UNet/VAE/CLIP doing 1 denoising step (minutes on a CPU; about 5 GB of RAM).

    python benchmarks/edit_scaling.py [--repeats 5] [--real] [--smoke]

`--smoke` times 512² and 1024x768 once each: it checks the script, it measures nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from editanything import compose, read_image  # noqa: E402
from editanything.generate import ClassicalGenerator, GenerationParams  # noqa: E402

SIZES = [(512, 512), (1024, 1024), (2048, 2048), (4000, 3000)]  # (width, height)
SMOKE_SIZES = [(512, 512), (1024, 768)]
TARGET = 1.3


def _inputs(photo: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    image = cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (260, 250), (90, 120), 15, 0, 360, 1, -1)  # the same 180x240 mask at every size
    return image, mask.astype(bool)


def _time(generator, params: GenerationParams, photo: np.ndarray, repeats: int,
          sizes: list[tuple[int, int]]) -> list[float]:
    """Median time per size; sizes are interleaved within each round so that load changes hit all alike."""
    inputs = [_inputs(photo, w, h) for w, h in sizes]
    compose.edit_region(*inputs[0], generator, params)  # warm-up: model load, kernel selection
    times: list[list[float]] = [[] for _ in sizes]
    for _ in range(repeats):
        for i, (image, mask) in enumerate(inputs):
            start = time.perf_counter()
            compose.edit_region(image, mask, generator, params)
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def _real_size_generator(workdir: Path):
    """SD 1.5 inpainting at its real size with random weights (configs as in the released model)."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from tiny_sd import build_tokenizer
    from transformers import CLIPTextConfig, CLIPTextModel

    from editanything.generate.diffusion import DiffusionGenerator

    torch.manual_seed(0)
    unet = UNet2DConditionModel(in_channels=9, cross_attention_dim=768, sample_size=64)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=514, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                        num_attention_heads=12, max_position_embeddings=77, bos_token_id=512,
                                        eos_token_id=513, pad_token_id=513))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                              steps_offset=1, set_alpha_to_one=False)
    pipe = StableDiffusionInpaintPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=build_tokenizer(workdir),
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return DiffusionGenerator.from_pipeline(pipe, name="sd15-random")


def _report(name: str, medians: list[float], sizes: list[tuple[int, int]]) -> bool:
    base = medians[0]
    print(f"\n{name}")
    print(f"{'image':>11}  {'median s':>9}  {'vs 512²':>8}")
    for (w, h), t in zip(sizes, medians):
        print(f"{w:>5}x{h:<5}  {t:9.3f}  {t / base:7.2f}x")
    ok = medians[-1] / base <= TARGET
    w, h = sizes[-1]
    print(f"{w}x{h} / 512² = {medians[-1] / base:.2f}x (target <= {TARGET}x): {'ok' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--real", action="store_true", help="also time a real-size random SD 1.5 (slow on CPU)")
    parser.add_argument("--smoke", action="store_true", help="two sizes, once: checks the script, measures nothing")
    args = parser.parse_args()
    sizes = SMOKE_SIZES if args.smoke else SIZES
    if args.smoke:
        args.repeats = 1

    import tiny_sd

    from editanything.generate import get_generator

    photo = read_image(ROOT / "demos" / "astronaut.jpg")
    print(f"crop-mode edit, the same 180x240 mask on each image; median of {args.repeats}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores{' [smoke]' if args.smoke else ''}")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        tiny = get_generator(str(tiny_sd.save_diffusers(Path(tmp) / "tiny-sd")))
        params = GenerationParams(prompt="a red balloon", sampler="DPM++ 2M Karras", steps=2, seed=1, resolution=128)
        ok &= _report("tiny random SD inpainting, 2 steps at 128 px",
                      _time(tiny, params, photo, args.repeats, sizes), sizes)
        ok &= _report("classical (OpenCV Telea)", _time(ClassicalGenerator(), params, photo, args.repeats, sizes),
                      sizes)
        if args.real:
            real = _real_size_generator(Path(tmp))
            params = GenerationParams(prompt="a red balloon", sampler="DDIM", steps=1, seed=1, resolution=512)
            ok &= _report("real-size random SD 1.5 inpainting, 1 step at 512 px",
                          _time(real, params, photo, 1, sizes), sizes)
        else:
            print("\nreal-size SD 1.5 part skipped (pass --real; about 30 s per size on 2 CPU cores)")
    return 0 if ok or args.smoke else 1  # a smoke run checks the script, not the figures


if __name__ == "__main__":
    sys.exit(main())
