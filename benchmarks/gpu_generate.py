"""Inpainting and text-to-image speed on a GPU with real-size random weights: fp16, SDPA attention, torch.compile.

Builds each model from its published architecture (random weights: the cost is the same), runs it
through the same stock diffusers pipelines the generators use, and prints the median seconds per
image after a warm-up:

- SD 1.5 inpainting at 512², 25 steps (target < 0.6 s on an H100/H200; published: 1.59 s for 50
  steps on an A100), with torch.compile off and on;
- the same with the LCM sampler at 4 steps (LCM-LoRA's cost is folded into the weights once fused);
- SDXL inpainting at 1024², 25 steps;
- FLUX.2 [klein] 4B inpainting at 1024², 4 steps, in bf16 (FLUX's precision) with torch.compile off
  and on: the published transformer geometry (5 double + 20 single blocks, 24 heads of 128,
  7680-wide text input) and the Qwen3-4B text encoder, built on the GPU;
- text to image (what `editanything generate` runs): SD 1.5 at 512², 25 steps (target < 0.5 s on an
  H100/H200), SDXL at 1024², 25 steps, FLUX.2 [klein] 4B at 1024², 4 steps (published: 0.57 s on an
  H100), each through its stock text-to-image pipeline, torch.compile off.

    python benchmarks/gpu_generate.py [--repeats 3] [--no-compile] [--smoke]

`--smoke` runs tiny models for 2 steps, once, on whatever device there is, to check the script itself
(torch.compile only on a GPU: compiling on a CPU takes minutes).
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

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402


def _tokenizer(folder: Path):
    from tiny_sd import build_tokenizer  # a byte-level CLIP tokenizer: tokenizing costs the same as the real one

    return build_tokenizer(folder)


def _clip(hidden: int, layers: int, heads: int, projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                            num_attention_heads=heads, max_position_embeddings=77, projection_dim=hidden,
                            hidden_act="gelu" if projection else "quick_gelu")
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _vae(smoke: bool):
    from diffusers import AutoencoderKL

    channels = (32, 64) if smoke else (128, 256, 512, 512)
    return AutoencoderKL(block_out_channels=channels, latent_channels=4, layers_per_block=1 if smoke else 2,
                         down_block_types=("DownEncoderBlock2D",) * len(channels),
                         up_block_types=("UpDecoderBlock2D",) * len(channels))


def sd15(work: Path, smoke: bool, inpaint: bool = True):
    """SD 1.5 inpainting (or text to image): the published UNet (9 inputs, or 4; 768-wide cross-attention), VAE and
    CLIP ViT-L text encoder."""
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline, StableDiffusionPipeline, UNet2DConditionModel

    channels = 9 if inpaint else 4
    if smoke:
        unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, in_channels=channels,
                                    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                    sample_size=32)
        text = _clip(32, 1, 2)
    else:
        unet = UNet2DConditionModel(in_channels=channels, cross_attention_dim=768, sample_size=64)
        text = _clip(768, 12, 12)
    return (StableDiffusionInpaintPipeline if inpaint else StableDiffusionPipeline)(
        vae=_vae(smoke), text_encoder=text, tokenizer=_tokenizer(work / "tok"), unet=unet,
        scheduler=DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def sdxl(work: Path, smoke: bool, inpaint: bool = True):
    """SDXL inpainting (or text to image): the published UNet (text_time conditioning, 2048-wide cross-attention),
    CLIP-L + bigG."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline, StableDiffusionXLPipeline, \
        UNet2DConditionModel

    channels = 9 if inpaint else 4
    if smoke:
        unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, in_channels=channels,
                                    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                    use_linear_projection=True, addition_embed_type="text_time",
                                    addition_time_embed_dim=8, projection_class_embeddings_input_dim=80,
                                    cross_attention_dim=64, sample_size=32)
        text, text_2 = _clip(32, 1, 2), _clip(32, 1, 2, projection=True)
    else:
        unet = UNet2DConditionModel(
            in_channels=channels, sample_size=128, block_out_channels=(320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
            use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816)
        text, text_2 = _clip(768, 12, 12), _clip(1280, 32, 20, projection=True)
    tokenizer = _tokenizer(work / "tok")
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="leading")
    parts = dict(vae=_vae(smoke), text_encoder=text, text_encoder_2=text_2, tokenizer=tokenizer,
                 tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    if not inpaint:
        return StableDiffusionXLPipeline(**parts)
    return StableDiffusionXLInpaintPipeline(**parts, requires_aesthetics_score=False)


def flux2_klein(device: str, smoke: bool):
    """FLUX.2 [klein] 4B inpainting: its published transformer and Qwen3-4B text encoder, bf16, built on `device`.

    Built under `torch.device(device)` so the ~8B random parameters are initialised where they run.
    The tokenizer is the tests' byte-level one: the prompt is padded to 512 tokens either way.
    """
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinInpaintPipeline, \
        Flux2Transformer2DModel
    from tiny_flux2 import build_tokenizer
    from transformers import Qwen3Config, Qwen3ForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            if smoke:
                text = Qwen3ForCausalLM(Qwen3Config(vocab_size=300, hidden_size=8, intermediate_size=16,
                                                    num_hidden_layers=28, num_attention_heads=2, num_key_value_heads=1,
                                                    head_dim=4, tie_word_embeddings=True))
                transformer = Flux2Transformer2DModel(in_channels=16, num_layers=1, num_single_layers=1,
                                                      attention_head_dim=8, num_attention_heads=2,
                                                      joint_attention_dim=24, timestep_guidance_channels=16,
                                                      axes_dims_rope=(2, 2, 2, 2), guidance_embeds=False)
                vae = AutoencoderKLFlux2(block_out_channels=(16, 16, 16, 16), layers_per_block=1, latent_channels=4,
                                         norm_num_groups=8)
            else:
                text = Qwen3ForCausalLM(Qwen3Config(vocab_size=151936, hidden_size=2560, intermediate_size=9728,
                                                    num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                                                    head_dim=128, max_position_embeddings=40960,
                                                    tie_word_embeddings=True))
                transformer = Flux2Transformer2DModel(in_channels=128, num_layers=5, num_single_layers=20,
                                                      attention_head_dim=128, num_attention_heads=24,
                                                      joint_attention_dim=7680, guidance_embeds=False)
                vae = AutoencoderKLFlux2()
    finally:
        torch.set_default_dtype(before)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    return Flux2KleinInpaintPipeline(scheduler=scheduler, vae=vae, text_encoder=text,
                                     tokenizer=build_tokenizer(), transformer=transformer, is_distilled=True)


def seconds(pipe, size: int, steps: int, repeats: int, device: str, guidance: float = 7.0,
            negative: str | None = "blurry", inpaint: bool = True) -> float:
    """Median wall time of one image, after a warm-up run (kernel choice, compilation)."""
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8))
    mask = Image.fromarray(np.pad(np.full((size // 2, size // 2), 255, np.uint8), size // 4))
    extra = {"negative_prompt": negative} if negative is not None else {}  # FLUX.2 klein has none
    if inpaint:
        extra.update(image=image, mask_image=mask, strength=1.0)

    def run() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        pipe(prompt="a red brick wall", height=size, width=size, num_inference_steps=steps, guidance_scale=guidance,
             generator=torch.Generator("cpu").manual_seed(0), output_type="np", **extra)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    run()
    return statistics.median(run() for _ in range(repeats))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile runs")
    parser.add_argument("--smoke", action="store_true", help="tiny models, to check the script on any machine")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.smoke:
        args.repeats = 1
        args.no_compile = args.no_compile or device == "cpu"
    if device == "cpu" and not args.smoke:
        print("no CUDA device: this benchmark measures a GPU (use --smoke to check the script on a CPU)")
        return 2
    dtype = torch.float16 if device == "cuda" else torch.float32
    scale = 1 / 8 if args.smoke else 1  # smoke: 64 px and 128 px instead of 512 and 1024
    steps, lcm_steps = (2, 2) if args.smoke else (25, 4)
    from diffusers import LCMScheduler

    name = torch.cuda.get_device_name() if device == "cuda" else "CPU (smoke)"
    print(f"{name}, torch {torch.__version__}, {dtype}, SDPA attention (diffusers' default on torch 2); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pipe = sd15(work, args.smoke).to(device, dtype)
        pipe.set_progress_bar_config(disable=True)
        size = int(512 * scale)
        rows.append(("SD 1.5 inpaint", f"{size}²", steps, "off", seconds(pipe, size, steps, args.repeats, device)))
        base = pipe.scheduler
        pipe.scheduler = LCMScheduler.from_config(base.config)
        rows.append(("SD 1.5 inpaint, LCM", f"{size}²", lcm_steps, "off",
                     seconds(pipe, size, lcm_steps, args.repeats, device, guidance=1.5)))
        pipe.scheduler = base
        if not args.no_compile:
            pipe.unet = torch.compile(pipe.unet, fullgraph=True)
            rows.append(("SD 1.5 inpaint", f"{size}²", steps, "on", seconds(pipe, size, steps, args.repeats, device)))
        del pipe
        if device == "cuda":
            torch.cuda.empty_cache()
        pipe = sd15(work, args.smoke, inpaint=False).to(device, dtype)
        pipe.set_progress_bar_config(disable=True)
        rows.append(("SD 1.5 txt2img", f"{size}²", steps, "off",
                     seconds(pipe, size, steps, args.repeats, device, inpaint=False)))
        del pipe
        size = int(1024 * scale)
        for inpaint in (True, False):
            if device == "cuda":
                torch.cuda.empty_cache()
            pipe = sdxl(work, args.smoke, inpaint).to(device, dtype)
            pipe.set_progress_bar_config(disable=True)
            rows.append((f"SDXL {'inpaint' if inpaint else 'txt2img'}", f"{size}²", steps, "off",
                         seconds(pipe, size, steps, args.repeats, device, inpaint=inpaint)))
            del pipe
        if device == "cuda":
            torch.cuda.empty_cache()
        pipe = flux2_klein(device, args.smoke)
        pipe.set_progress_bar_config(disable=True)
        flux_steps = 2 if args.smoke else 4
        rows.append(("FLUX.2 klein 4B, bf16" if device == "cuda" else "FLUX.2 klein (tiny)", f"{size}²", flux_steps,
                     "off", seconds(pipe, size, flux_steps, args.repeats, device, guidance=1.0, negative=None)))
        from diffusers import Flux2KleinPipeline

        text_to_image = Flux2KleinPipeline.from_pipe(pipe)  # the same weights, as `generate` uses them
        text_to_image.set_progress_bar_config(disable=True)
        rows.append(("FLUX.2 klein txt2img" if device == "cuda" else "FLUX.2 klein t2i (tiny)", f"{size}²",
                     flux_steps, "off", seconds(text_to_image, size, flux_steps, args.repeats, device, guidance=1.0,
                                                negative=None, inpaint=False)))
        if not args.no_compile:
            pipe.transformer = torch.compile(pipe.transformer)
            rows.append(("FLUX.2 klein 4B, bf16" if device == "cuda" else "FLUX.2 klein (tiny)", f"{size}²",
                         flux_steps, "on", seconds(pipe, size, flux_steps, args.repeats, device, guidance=1.0,
                                                   negative=None)))
    print(f"{'model':24} {'size':>7} {'steps':>5} {'compile':>7} {'s/image':>8}")
    for model, size, steps, compiled, secs in rows:
        print(f"{model:24} {size:>7} {steps:5d} {compiled:>7} {secs:8.3f}")
    print(f"\nSD 1.5: LCM {rows[1][2]} steps / its default sampler {rows[0][2]} steps = {rows[1][4] / rows[0][4]:.2f}x the time"
          + (f"; torch.compile on / off = {rows[2][4] / rows[0][4]:.2f}x" if not args.no_compile else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
