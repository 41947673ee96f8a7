"""Seconds per caption on this CPU: BLIP-2 (OPT-2.7b) against Florence-2 base, in one run, real sizes.

Both models are built with random weights at their published architecture, float32 as the toolkit
runs them on a CPU, and caption through the toolkit's own captioners (`Blip2Captioner`,
`Florence2Captioner`: processor, generate, decode):

- Florence-2 base: DaViT (depths 1/1/9/1, widths 128–1024) + BART (6+6 layers, width 768, vocabulary
  51,328): 231,443,968 parameters, the count public records give for florence-community/Florence-2-base;
  768x768 input (577 image tokens), 3 beams as its model card decodes.
- BLIP-2 OPT-2.7b: EVA ViT-g (39 layers, width 1408, 224 px, patch 14) + Q-Former (12 layers, 32 queries)
  + OPT-2.7b (32 layers, width 2560, vocabulary 50,272): 3,744,679,936 parameters, 15.0 GB in float32
  (the hub's two shards: 10 + 4.98 GB);
  greedy decoding as `Blip2Captioner` does.

Random weights never stop early on their own, so both are held to the same number of new tokens
(`--new-tokens`, a typical caption's length) with `min_new_tokens`. Each model is built on the meta
device and its memory allocated once (no second copy while initialising); a model whose float32
weights do not fit in the memory available now (with 10 % to spare) is skipped, saying so. The
machine's load (`uptime`) is printed first; figures taken under load are not the machine's.

    python benchmarks/captioners.py [--runs 3] [--threads N] [--new-tokens 20] [--only florence2|blip2]
    python benchmarks/captioners.py --smoke    # a few layers of each: checks the script runs
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from editanything import read_image  # noqa: E402
from editanything.caption import Blip2Captioner, Florence2Captioner  # noqa: E402
from tiny_detect_models import _byte_level_vocab  # noqa: E402
from tiny_florence2 import build_processor, generation_config  # noqa: E402

PHOTOS = ("coffee.jpg", "rocket.jpg", "astronaut.jpg")
# florence-community/Florence-2-base: vision config defaults but the projection, BART-base text model
FLORENCE2_BASE = dict(text=dict(vocab_size=51328, d_model=768, encoder_layers=6, decoder_layers=6,
                                encoder_attention_heads=12, decoder_attention_heads=12, encoder_ffn_dim=3072,
                                decoder_ffn_dim=3072, max_position_embeddings=1024),
                      vision=dict(projection_dim=768))
# Salesforce/blip2-opt-2.7b: EVA ViT-g/14 at 224 px, BERT-base Q-Former with cross-attention every 2nd layer, OPT-2.7b
BLIP2_OPT_27B = dict(vision=dict(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39,
                                 num_attention_heads=16, image_size=224, patch_size=14),
                     qformer=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                  intermediate_size=3072, encoder_hidden_size=1408),
                     text=dict(vocab_size=50272, hidden_size=2560, num_hidden_layers=32, ffn_dim=10240,
                               num_attention_heads=32, max_position_embeddings=2048, word_embed_proj_dim=2560),
                     num_query_tokens=32)


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (what can be allocated without swapping others out)."""
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) * 1024


def materialize(build, torch):
    """`build()` on the meta device, then real memory once, filled with N(0, 0.02) (LayerNorm scales 1):
    no initialisation pass over a second copy, and no uninitialised (denormal, NaN) values to time."""
    with torch.device("meta"):
        model = build()
    model.to_empty(device="cpu")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and ("norm" in name or "layer_norm" in name) and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02)
        for name, b in model.named_buffers():  # position ids and the like are computed, not learned
            if b.is_floating_point():
                b.zero_()
            else:
                b.copy_(torch.arange(b.shape[-1]).expand_as(b)) if b.dim() else b.zero_()
    return model.eval()


def florence2_captioner(smoke: bool, new_tokens: int, workdir: Path, torch):
    from transformers import BartConfig, Florence2Config, Florence2ForConditionalGeneration, Florence2VisionConfig

    text = dict(FLORENCE2_BASE["text"], **(dict(encoder_layers=1, decoder_layers=1) if smoke else {}))
    vision = dict(FLORENCE2_BASE["vision"], **(dict(depths=[1, 1, 1, 1]) if smoke else {}))
    processor = build_processor(workdir / "florence2", image_side=768, vocab_size=text["vocab_size"])
    tok = processor.tokenizer
    config = Florence2Config(
        text_config=BartConfig(**text, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                               pad_token_id=tok.pad_token_id, decoder_start_token_id=tok.eos_token_id).to_dict(),
        vision_config=Florence2VisionConfig(**vision, drop_path_rate=0.0).to_dict(),
        image_token_id=tok.image_token_id)
    model = materialize(lambda: Florence2ForConditionalGeneration(config), torch)
    model.generation_config = generation_config(tok)
    model.generation_config.min_new_tokens = new_tokens
    return Florence2Captioner(model, processor, max_new_tokens=new_tokens, name="florence-2-base-random")


def blip2_captioner(smoke: bool, new_tokens: int, workdir: Path, torch):
    from transformers import (Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, Blip2QFormerConfig,
                              Blip2VisionConfig, BlipImageProcessor, GPT2Tokenizer, OPTConfig)

    layers = dict(num_hidden_layers=1) if smoke else {}
    vocab = _byte_level_vocab()
    while len(vocab) < BLIP2_OPT_27B["text"]["vocab_size"] - 1:
        vocab[f"tok{len(vocab)}"] = len(vocab)
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=[], bos_token="</s>", eos_token="</s>", unk_token="</s>",
                              pad_token="<pad>")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    nq = BLIP2_OPT_27B["num_query_tokens"]
    processor = Blip2Processor(BlipImageProcessor(size={"height": 224, "width": 224}, do_convert_rgb=True), tokenizer,
                               num_query_tokens=nq)
    config = Blip2Config(
        vision_config=Blip2VisionConfig(**{**BLIP2_OPT_27B["vision"], **layers}).to_dict(),
        qformer_config=Blip2QFormerConfig(**{**BLIP2_OPT_27B["qformer"], **layers}).to_dict(),
        text_config=OPTConfig(**{**BLIP2_OPT_27B["text"], **layers, "vocab_size": len(tokenizer)},
                              bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id).to_dict(),
        num_query_tokens=nq, image_token_index=tokenizer.convert_tokens_to_ids("<image>"))
    model = materialize(lambda: Blip2ForConditionalGeneration(config), torch)
    model.generation_config.min_new_tokens = new_tokens
    return Blip2Captioner(model, processor, max_new_tokens=new_tokens, device="cpu", name="blip2-opt-2.7b-random")


def parameter_bytes(key: str, torch) -> tuple[int, int]:
    """(parameters, float32 bytes) of a model, counted on the meta device (no memory)."""
    from transformers import (BartConfig, Blip2Config, Blip2ForConditionalGeneration, Florence2Config,
                              Florence2ForConditionalGeneration)

    with torch.device("meta"):
        if key == "florence2":
            model = Florence2ForConditionalGeneration(Florence2Config(
                text_config=BartConfig(**FLORENCE2_BASE["text"]).to_dict(), vision_config=FLORENCE2_BASE["vision"]))
        else:
            model = Blip2ForConditionalGeneration(Blip2Config(
                vision_config=BLIP2_OPT_27B["vision"], qformer_config=BLIP2_OPT_27B["qformer"],
                text_config=dict(BLIP2_OPT_27B["text"], model_type="opt"), num_query_tokens=32))
    n = sum(p.numel() for p in model.parameters())
    return n, n * 4


def time_captions(captioner, photos, runs: int) -> float:
    """Seconds per caption over `runs` captions after one warm-up."""
    captioner.caption(photos[0])  # warm-up: first-call allocations
    start = time.perf_counter()
    for i in range(runs):
        captioner.caption(photos[i % len(photos)])
    return (time.perf_counter() - start) / runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="captions per model (default 3)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--new-tokens", type=int, default=20, help="new tokens per caption, both models (default 20)")
    ap.add_argument("--only", choices=("florence2", "blip2"), help="time one model (the ratio needs both)")
    ap.add_argument("--smoke", action="store_true",
                    help="1 layer per stack, 4 new tokens, 1 run: checks the script runs")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(f"cpus: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, "
          f"memory available: {available_bytes() / 1e9:.1f} GB")
    runs, new_tokens = (1, 4) if args.smoke else (args.runs, args.new_tokens)
    photos = [read_image(ROOT / "demos" / p) for p in PHOTOS]
    builders = {"florence2": florence2_captioner, "blip2": blip2_captioner}
    per: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key in ("florence2", "blip2"):
            if args.only and key != args.only:
                continue
            params, weights = parameter_bytes(key, torch)
            if not args.smoke and weights * 1.1 > available_bytes():
                print(f"{key}: skipped: its float32 weights take {weights / 1e9:.1f} GB and "
                      f"{available_bytes() / 1e9:.1f} GB are available now")
                continue
            start = time.perf_counter()
            captioner = builders[key](args.smoke, new_tokens, Path(tmp), torch)
            built = time.perf_counter() - start
            seconds = time_captions(captioner, photos, runs)
            per[key] = seconds
            size = "smoke-sized" if args.smoke else f"{params / 1e6:.0f}M parameters, {weights / 1e9:.2f} GB float32"
            print(f"{key}: {seconds:.2f} s per caption ({new_tokens} new tokens; {size}; built in {built:.1f} s)")
            del captioner
            gc.collect()
    if len(per) == 2:
        print(f"BLIP-2 / Florence-2 = {per['blip2'] / per['florence2']:.1f}x the time per caption")
    else:
        print("BLIP-2 / Florence-2 = n/a (both models must run for the ratio)")
    if args.smoke:
        print("smoke run: 1 layer per stack and 4 new tokens; not a measurement of the real models")


if __name__ == "__main__":
    main()
