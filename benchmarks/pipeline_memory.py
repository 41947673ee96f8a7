"""Peak RSS of one full text-driven edit with real-size models: Grounding DINO → SAM → SD 1.5 inpainting.

Issue 24's target: the full CPU edit with real-size models (SAM vit_b, Grounding DINO Swin-T OGC with
its BERT, SD 1.5 inpainting) peaks under 6 GB of resident memory, on the default path (models kept
loaded for the next edit) and on the low-memory path alike, with output pixels identical on every path
(issue 4's target was 12 GB).

1. Builds real-size random-weight models (random weights cost the same memory and time as trained
   ones) and saves them in a folder of their own, in the official formats but under names of their
   own (`support/bench_models.py`: a manifest names them, so the models layer finds, checks and loads them as
   it loads downloaded files): `random-sam-vit-b.pth` (a bare state dict),
   `random-groundingdino-swint-ogc.pth` (`{"model": state_dict}`, packaged Swin-T OGC config at full
   size), `random-bert-base-uncased/` (BertConfig() model + a 30522-token vocab.txt, registered as
   `bert-base-uncased`, which Grounding DINO requires by name) and `random-sd15-inpainting-fp16/`
   (diffusers folder: 9-channel UNet, SD VAE, CLIP ViT-L/14 text encoder, a 49408-token byte-level
   CLIP tokenizer, PNDM scheduler), its weights in `*.fp16.safetensors` files only, as the released
   repository that the `sd15-inpainting` catalogue entry downloads has them. Each model is built,
   saved and freed before the next. Building writes 3.6 GB and takes a minute or two: `--cache DIR`
   keeps the folder between runs.
2. For each mode, in a fresh subprocess (so the peak is the pipeline's, not the builder's), runs
   `Editor().edit(coffee.jpg, "cup" → "a mug", 1 step, seed 0, resolution 512)` with the detector's
   thresholds at 0 (random weights then still find boxes), and reports the time of each stage and the
   peak RSS: `getrusage(RUSAGE_SELF).ru_maxrss` (the kernel's high-water mark) and, to say in which
   stage the peak happens, VmRSS read from /proc/self/status every 50 ms by a background thread.
   Modes: `default` (`Editor(low_memory=False)`: models stay loaded; SD's fp16 weights stay fp16,
   each layer upcast to fp32 as it runs, `generate/upcast.py`), `low-memory`
   (`Editor(low_memory=True)`: detector and segmenter released, and their freed heap given back to
   the system, once the masks are computed, before Stable Diffusion loads; its text encoder freed
   once the prompt is encoded and its UNet before the VAE decodes; the CLI's edit of one photo runs
   this path), and `upcast-at-load` (the default path as it was: every fp16 weight upcast to fp32
   as SD loads, `layerwise_upcast=False`), the baseline of the memory and of the time per edit.
3. Prints a table: peak RSS per mode, its ratio to the 6 GB target, and per-stage times and peaks,
   the ratio of each mode's peak and generation time to the baseline's, and whether the output
   pixels of every mode are identical (sha256 of the edited image): a mode that changes a pixel fails
   the run.

Times on a shared machine are indicative (the upcast-per-layer cost is best read from `generate s`
of default against upcast-at-load, both measured in the same run); the memory figures are the point
and barely depend on the load. GB here is 10^9 bytes.
On a GPU (`--device cuda`) the backends pick fp16 and the table adds `torch.cuda.max_memory_allocated`.

    python benchmarks/pipeline_memory.py [--cache DIR] [--device cpu|cuda] [--modes default,low-memory,upcast-at-load] [--smoke]
    python benchmarks/pipeline_memory.py --step-cost [N] [--cache DIR] [--smoke]

`--step-cost` times what the per-layer upcast costs: N UNet calls of one denoising step at 512 px
(a CFG batch of 2), the UNet's fp16 weights upcast per layer against upcast at load, interleaved in
one process, and checks that both give the same output bit for bit.

`--smoke` builds the tests' toy-size models instead (seconds) and edits at 64 px: it checks the
script and the whole path, it measures nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import io
import inspect
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

TARGET_GB = 6.0  # for the low-memory path
GB = 1e9
PHOTO = ROOT / "demos" / "coffee.jpg"
# mode -> (Editor's low_memory, DiffusionGenerator's layerwise_upcast)
MODES = {"default": (False, True), "low-memory": (True, True), "upcast-at-load": (False, False)}
TARGET_MODES = ("default", "low-memory")  # upcast-at-load is the default path as it was: the baseline
DETECTOR_OPTIONS = {"box_threshold": 0.0, "text_threshold": 0.0, "top_k": 3}
SAMPLE_EVERY_S = 0.05
BERT_VOCAB_SIZE = 30522
CLIP_VOCAB_SIZE = 49408  # ids 49406 / 49407 are <|startoftext|> / <|endoftext|>, as in openai/clip-vit-large-patch14
SAM, BERT, GDINO, SD = ("random-sam-vit-b.pth", "random-bert-base-uncased", "random-groundingdino-swint-ogc.pth",
                       "random-sd15-inpainting-fp16")
GDINO_CONFIG = "GroundingDINO_SwinT_OGC.py"  # packaged with groundingdino
TOY_GDINO_CONFIG = "toy-groundingdino-config.py"
STAGES = ("detect:load", "detect", "segment:load", "segment", "release", "generate:load", "generate", "other")


# ---- building the real-size random models ---------------------------------------------------------------

@contextlib.contextmanager
def _atomic_path(final: Path):
    """Yield a temporary sibling of `final` to write into; it becomes `final` only when the block succeeds."""
    partial = final.with_name(final.name + ".partial")
    if partial.is_dir():
        shutil.rmtree(partial)
    partial.unlink(missing_ok=True)
    yield partial
    os.replace(partial, final)


def build_sam(root: Path) -> None:
    import torch
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    model = sam_model_registry["vit_b"](checkpoint=None)
    with _atomic_path(root / SAM) as path:
        torch.save(model.state_dict(), path)


def build_bert(root: Path) -> None:
    import torch
    from tiny_detect_models import BERT_SPECIALS, BERT_WORDS
    from transformers import BertConfig, BertModel, BertTokenizer

    with _atomic_path(root / BERT) as folder:
        folder.mkdir()
        words = BERT_SPECIALS + BERT_WORDS + ["mug"]
        vocab = words + [f"[unused{i}]" for i in range(BERT_VOCAB_SIZE - len(words))]
        (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
        torch.manual_seed(0)
        model = BertModel(BertConfig())  # bert-base-uncased: 12 layers, hidden 768, vocab 30522
        model.save_pretrained(str(folder), safe_serialization=True)


def build_grounding_dino(root: Path) -> None:
    import torch
    from groundingdino.models import build_model
    from groundingdino.util.slconfig import SLConfig

    from editanything.detect.bert_compat import patched_bert_warper
    from editanything.detect.grounding_dino import packaged_config

    args = SLConfig.fromfile(str(packaged_config(GDINO_CONFIG)))
    args.device = "cpu"
    args.text_encoder_type = str(root / BERT)
    torch.manual_seed(0)
    with patched_bert_warper(), contextlib.redirect_stdout(io.StringIO()):
        model = build_model(args)
    with _atomic_path(root / GDINO) as path:
        torch.save({"model": model.state_dict()}, path)


def _write_clip_tokenizer_files(folder: Path) -> None:
    """tests/tiny_sd.py's byte-level CLIP vocabulary, padded to CLIP's 49408 ids with its specials last."""
    from tiny_sd import BOS, EOS, write_tokenizer_files

    write_tokenizer_files(folder)
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    del vocab[BOS], vocab[EOS]
    vocab.update({f"<|unused{i}|>": i for i in range(len(vocab), CLIP_VOCAB_SIZE - 2)})
    vocab[BOS], vocab[EOS] = CLIP_VOCAB_SIZE - 2, CLIP_VOCAB_SIZE - 1
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")


def build_sd15_inpainting(root: Path, work: Path) -> None:
    """The components saved one at a time (never all in memory), plus model_index.json, as save_pretrained lays them out."""
    import diffusers
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from tiny_sd import BOS, EOS
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    with _atomic_path(root / SD) as folder:
        folder.mkdir()
        torch.manual_seed(0)
        # UNet2DConditionModel's defaults are SD 1.x's blocks and widths; the inpainting UNet reads 9 channels.
        unet = UNet2DConditionModel(sample_size=64, in_channels=9, cross_attention_dim=768)
        # fp16 files only, as the released repository has them (the sd15-inpainting catalogue entry)
        unet.half().save_pretrained(folder / "unet", safe_serialization=True, variant="fp16")
        del unet
        gc.collect()
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                            sample_size=512, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4)
        vae.half().save_pretrained(folder / "vae", safe_serialization=True, variant="fp16")
        del vae
        gc.collect()
        text = CLIPTextModel(CLIPTextConfig(
            vocab_size=CLIP_VOCAB_SIZE, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
            num_attention_heads=12, max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu",
            bos_token_id=CLIP_VOCAB_SIZE - 2, eos_token_id=CLIP_VOCAB_SIZE - 1, pad_token_id=CLIP_VOCAB_SIZE - 1))
        text.half().save_pretrained(folder / "text_encoder", safe_serialization=True, variant="fp16")
        del text
        gc.collect()
        _write_clip_tokenizer_files(work / "clip-tokenizer")
        tokenizer = CLIPTokenizer(str(work / "clip-tokenizer" / "vocab.json"), str(work / "clip-tokenizer" / "merges.txt"),
                                  model_max_length=77, bos_token=BOS, eos_token=EOS, pad_token=EOS, unk_token=EOS)
        tokenizer.save_pretrained(folder / "tokenizer")
        # The released folders hold the slow tokenizer's vocab.json + merges.txt, not transformers 5's tokenizer.json.
        (folder / "tokenizer" / "tokenizer.json").unlink(missing_ok=True)
        _write_clip_tokenizer_files(folder / "tokenizer")
        PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                      steps_offset=1, set_alpha_to_one=False).save_pretrained(folder / "scheduler")
        index = {
            "_class_name": "StableDiffusionInpaintPipeline", "_diffusers_version": diffusers.__version__,
            "feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
            "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        }
        (folder / "model_index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")


def build_toy_models(root: Path) -> None:
    """The tests' toy-size models (same classes and formats), under this benchmark's names."""
    import tiny_sd
    from tiny_detect_models import build_tiny_grounding_dino
    from tiny_models import save_tiny_sam_checkpoint

    root.mkdir(parents=True, exist_ok=True)
    save_tiny_sam_checkpoint(root / SAM)
    toy = build_tiny_grounding_dino(root / ".work")
    os.replace(toy.bert_dir, root / BERT)
    os.replace(toy.checkpoint, root / GDINO)
    os.replace(toy.config, root / TOY_GDINO_CONFIG)
    tiny_sd.save_diffusers(root / SD, variant="fp16")
    shutil.rmtree(root / ".work", ignore_errors=True)


def write_manifest(root: Path, smoke: bool) -> None:
    from support.bench_models import write_manifest as write
    from tiny_models import TINY_SAM

    write(root, {
        "bench-sam-vit-b": {"paths": [SAM], "loader": {"backend": "sam", "sam_type": TINY_SAM if smoke else "vit_b"}},
        "bert-base-uncased": {"paths": [BERT], "loader": {"backend": "text-encoder"}},  # Grounding DINO's, by name
        "bench-groundingdino-swint-ogc": {"paths": [GDINO], "requires": ["bert-base-uncased"], "loader": {
            "backend": "groundingdino", "config": f"./{TOY_GDINO_CONFIG}" if smoke else GDINO_CONFIG}},
        "bench-sd15-inpainting": {"paths": [SD], "loader": {"backend": "diffusion", "variant": "fp16"}},
    })


def build_checkpoints(root: Path) -> None:
    """Every model the edit needs, under `root`; what a previous run left there (`--cache`) is reused."""
    root.mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, Path, Callable[[], None]]] = [
        ("SAM vit_b", root / SAM, lambda: build_sam(root)),
        ("BERT base uncased", root / BERT, lambda: build_bert(root)),
        ("Grounding DINO Swin-T OGC", root / GDINO, lambda: build_grounding_dino(root)),
        ("SD 1.5 inpainting", root / SD, lambda: build_sd15_inpainting(root, root / ".work")),
    ]
    for label, target, build in steps:
        if target.exists():
            print(f"  {label}: cached ({target.name})", flush=True)
            continue
        start = time.perf_counter()
        build()  # its model is freed when the builder returns, before the next one is built
        gc.collect()
        print(f"  {label}: built in {time.perf_counter() - start:.0f} s ({_size_gb(target):.2f} GB on disk)", flush=True)
    shutil.rmtree(root / ".work", ignore_errors=True)


def _size_gb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / GB


# ---- the measured run (a fresh process per mode) --------------------------------------------------------

def _rss_bytes() -> tuple[int, int]:
    """(VmRSS, RssAnon) of this process: all resident pages, and those not backed by a file."""
    found = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                found[key] = int(value.split()[0]) * 1024
    return found.get("VmRSS", 0), found.get("RssAnon", 0)


class StageMeter:
    """Exclusive wall time per stage, and the highest VmRSS (and RssAnon) sampled while each stage was the
    innermost one."""

    def __init__(self) -> None:
        self.seconds = {s: 0.0 for s in STAGES}
        self.peak = {s: 0 for s in STAGES}
        self.peak_anon = {s: 0 for s in STAGES}
        self.rss_after: dict[str, int] = {}
        self._start = 0.0
        self._stack: list[list] = []  # [stage, start, time spent in nested stages]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def current(self) -> str:
        stack = self._stack
        return stack[-1][0] if stack else "other"

    def _record(self, stage: str) -> int:
        rss, anon = _rss_bytes()
        self.peak[stage] = max(self.peak[stage], rss)
        self.peak_anon[stage] = max(self.peak_anon[stage], anon)
        return rss

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self._record(self.current())

    def start(self) -> None:
        self._start = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        nested = sum(v for k, v in self.seconds.items() if k != "other")
        self.seconds["other"] = time.perf_counter() - self._start - nested

    def wrap(self, owner: type, method: str, stage: str) -> None:
        """Count calls of `owner.method` (a function or classmethod, its own or inherited) as `stage`."""
        raw = inspect.getattr_static(owner, method)
        is_classmethod = isinstance(raw, classmethod)
        timed = self.timed(raw.__func__ if is_classmethod else raw, stage)
        setattr(owner, method, classmethod(timed) if is_classmethod else timed)

    def timed(self, func: Callable, stage: str) -> Callable:
        """`func`, its calls counted as `stage`."""
        meter = self

        def timed(*args, **kwargs):
            meter._record(meter.current())
            meter._stack.append([stage, time.perf_counter(), 0.0])
            try:
                return func(*args, **kwargs)
            finally:
                _, start, nested = meter._stack.pop()
                elapsed = time.perf_counter() - start
                meter.seconds[stage] += elapsed - nested
                if meter._stack:
                    meter._stack[-1][2] += elapsed
                meter.rss_after[stage] = meter._record(stage)

        return timed


def worker(mode: str, smoke: bool = False) -> dict[str, Any]:
    """One edit in this (fresh) process; the measurements as a dict."""
    if smoke:
        from tiny_models import register_tiny_sam

        register_tiny_sam()
    meter = StageMeter()
    meter.start()
    import numpy as np

    from editanything import Prompt, read_image
    from editanything.detect import GroundingDinoDetector
    from editanything.generate import GenerationParams
    from editanything.generate.diffusion import DiffusionGenerator
    from editanything import pipeline
    from editanything.models import pick_device
    from editanything.pipeline import Editor, EditRequest
    from editanything.segment import SamSegmenter

    for kind, stage in (("detector", "detect:load"), ("segmenter", "segment:load")):  # the Editor builds them by name
        pipeline._BUILDERS[kind] = meter.timed(pipeline._BUILDERS[kind], stage)
    for owner, method, stage in ((GroundingDinoDetector, "detect", "detect"), (SamSegmenter, "segment", "segment"),
                                 (Editor, "_release_selection", "release"),  # what low_memory runs
                                 (DiffusionGenerator, "load", "generate:load"),
                                 (DiffusionGenerator, "inpaint", "generate")):
        meter.wrap(owner, method, stage)
    device = pick_device()
    photo = read_image(PHOTO)
    # Named backends, not "auto": only the models built here are used, whatever else is on disk.
    low_memory, layerwise_upcast = MODES[mode]
    editor = Editor(detector="bench-groundingdino-swint-ogc", segmenter="bench-sam-vit-b",
                    generator="bench-sd15-inpainting", low_memory=low_memory,
                    generator_options={"layerwise_upcast": layerwise_upcast},
                    # smoke: the toy detector keeps Swin-T's full backbone, so it sees a small image
                    detector_options={**DETECTOR_OPTIONS, **({"image_size": 256, "max_size": 384} if smoke else {})})
    resolution = 64 if smoke else 512
    request = EditRequest(selection=Prompt(text="cup"),
                          params=GenerationParams(prompt="a mug", steps=1, seed=0, resolution=resolution))
    start = time.perf_counter()
    result = editor.edit(photo, request)
    total = time.perf_counter() - start
    meter.stop()
    out = {
        "mode": mode, "device": device, "resolution": resolution, "total_s": total, "seconds": meter.seconds, "peak_sampled": meter.peak,
        "peak_anon": meter.peak_anon,
        "rss_after": meter.rss_after, "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "boxes": len(result.detections), "mask_fraction": float(result.mask.mean()),
        "output_shape": list(result.images[0].shape),
        "output_sha256": hashlib.sha256(np.ascontiguousarray(result.images[0]).tobytes()).hexdigest(),
    }
    if device.startswith("cuda"):
        import torch

        out["cuda_max_allocated"] = torch.cuda.max_memory_allocated()
    return out


def run_worker(mode: str, checkpoints: Path, device: str | None, timeout: float, smoke: bool) -> dict[str, Any]:
    from support.bench_models import own_models_env

    with tempfile.TemporaryDirectory(prefix="pipeline-memory-") as scratch:
        env = dict(os.environ, **own_models_env(checkpoints),
                   EDITANYTHING_HOME=str(Path(scratch) / "home"), HF_HOME=str(Path(scratch) / "hf"))
        if device:
            env["EDITANYTHING_DEVICE"] = device
        proc = subprocess.run([sys.executable, __file__, "--worker", mode, *(["--smoke"] if smoke else [])],
                              env=env, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{mode} run failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT "):])


# ---- the cost of upcasting per layer ---------------------------------------------------------------------

def step_cost(root: Path, smoke: bool, repeats: int) -> None:
    """One denoising step's UNet call (CFG: a batch of 2, at 512 px), its fp16 weights upcast per layer
    against upcast at load, interleaved in this process so that both see the same load."""
    import statistics

    import torch
    from diffusers import UNet2DConditionModel

    from editanything.generate.upcast import upcast_per_layer

    folder = root / SD / "unet"
    load = dict(variant="fp16", local_files_only=True)
    units = {"per-layer": upcast_per_layer(UNet2DConditionModel.from_pretrained(folder, dtype=torch.float16, **load),
                                           "unet").eval(),
             "at-load": UNet2DConditionModel.from_pretrained(folder, dtype=torch.float32, **load).eval()}
    config = units["at-load"].config
    side = 8 if smoke else 64  # latents of a 512 px crop
    rng = torch.Generator().manual_seed(0)
    sample = torch.randn(2, config.in_channels, side, side, generator=rng)
    text = torch.randn(2, 77, config.cross_attention_dim, generator=rng)
    seconds: dict[str, list[float]] = {name: [] for name in units}
    outputs = {}
    with torch.no_grad():
        for _ in range(repeats):
            for name, unet in units.items():
                start = time.perf_counter()
                outputs[name] = unet(sample, 500, text).sample
                seconds[name].append(time.perf_counter() - start)
    same = torch.equal(outputs["per-layer"], outputs["at-load"])
    per_layer, at_load = (statistics.median(seconds[n]) for n in ("per-layer", "at-load"))
    print(f"\nUNet step at {side * 8} px (CFG batch of 2), {torch.get_num_threads()} thread(s), median of {repeats} "
          f"interleaved: upcast per layer {per_layer:.2f} s, upcast at load {at_load:.2f} s "
          f"(min {min(seconds['per-layer']):.2f} / {min(seconds['at-load']):.2f} s); outputs "
          f"{'identical' if same else 'DIFFER'}")
    print(f"per-layer upcast / upcast at load UNet step = {per_layer / at_load:.2f}x")
    print(f"load average now {os.getloadavg()[0]:.1f}")
    if not same:
        raise SystemExit("the per-layer upcast changed the UNet's output")


# ---- report ---------------------------------------------------------------------------------------------

def report(results: list[dict[str, Any]]) -> bool:
    print(f"\nfull text edit on {PHOTO.name} ({results[0]['device']}): 'cup' → 'a mug', 1 step at {results[0]['resolution']} px")
    print(f"peak = ru_maxrss of the worker process; target < {TARGET_GB:g} GB on the {' and '.join(TARGET_MODES)} "
          f"paths (GB = 10^9 bytes)\n")
    head = (f"{'mode':<14} {'peak GB':>7} {'/target':>7} {'anon GB':>7} {'peak stage':>13} {'detect s':>9} {'segment s':>9} "
            f"{'generate s':>10} {'loads s':>7} {'total s':>7}")
    print(head)
    print("-" * len(head))
    ok = True
    for r in results:
        if r["mode"] in TARGET_MODES:
            ok &= r["ru_maxrss"] / GB < TARGET_GB
        s = r["seconds"]
        peak = r["ru_maxrss"] / GB
        stage = max(r["peak_sampled"], key=r["peak_sampled"].get)
        loads = s["detect:load"] + s["segment:load"] + s["generate:load"]
        print(f"{r['mode']:<14} {peak:7.2f} {peak / TARGET_GB:6.2f}x {max(r['peak_anon'].values()) / GB:7.2f} {stage:>13} "
              f"{s['detect']:9.1f} {s['segment']:9.1f} "
              f"{s['generate']:10.1f} {loads:7.1f} {r['total_s']:7.1f}")
    print("anon GB: highest sampled RssAnon; the rest of the RSS is file-backed pages (diffusers maps the "
          "safetensors files), which the kernel can drop and read again under memory pressure")
    print("\nper stage: exclusive seconds / highest sampled VmRSS GB (of which RssAnon) / VmRSS GB when it ended")
    print(f"{'stage':<14}" + "".join(f"{r['mode']:>30}" for r in results))
    for stage in STAGES:
        cells = []
        for r in results:
            after = r["rss_after"].get(stage)
            cells.append(f"{r['seconds'][stage]:7.1f} s {r['peak_sampled'][stage] / GB:5.2f} "
                         f"({r['peak_anon'][stage] / GB:4.2f}) {'    -' if after is None else f'{after / GB:5.2f}'}")
        print(f"{stage:<14}" + "".join(f"{c:>30}" for c in cells))
    print()
    by_mode = {r["mode"]: r for r in results}
    for mode, base in (("low-memory", "default"), ("default", "upcast-at-load"), ("low-memory", "upcast-at-load")):
        if mode in by_mode and base in by_mode:
            a, b = by_mode[mode], by_mode[base]
            print(f"{mode} / {base} peak RSS: {a['ru_maxrss'] / b['ru_maxrss']:.2f}x, "
                  f"generate s: {a['seconds']['generate'] / b['seconds']['generate']:.2f}x")
    for r in results:
        if "cuda_max_allocated" in r:
            print(f"{r['mode']}: torch.cuda.max_memory_allocated {r['cuda_max_allocated'] / GB:.2f} GB")
    print(f"(boxes kept: {results[0]['boxes']}, mask covers {results[0]['mask_fraction']:.0%} of the photo, "
          f"output {tuple(results[0]['output_shape'])})")
    same = len({r["output_sha256"] for r in results}) == 1
    print(f"\noutput pixels: {'identical in every mode' if same else 'DIFFER between modes'} "
          f"(sha256 {', '.join(r['mode'] + ' ' + r['output_sha256'][:12] for r in results)})")
    measured = [r["mode"] for r in results if r["mode"] in TARGET_MODES]
    if measured:
        print(f"{' and '.join(measured)} under {TARGET_GB:g} GB: {'ok' if ok else 'MISSED'}")
    print(f"load average now {os.getloadavg()[0]:.1f}")
    return ok and same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, help="keep the built models in DIR and reuse them (about 6 GB)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 … (sets EDITANYTHING_DEVICE for the measured runs)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, among: {', '.join(MODES)}")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed to each measured run")
    parser.add_argument("--smoke", action="store_true", help="toy-size models: checks the script, measures nothing")
    parser.add_argument("--step-cost", type=int, nargs="?", const=3, metavar="N",
                        help="instead of the edits: time N (default 3) UNet steps with SD's weights upcast per "
                             "layer and upcast at load, interleaved")
    parser.add_argument("--worker", choices=list(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.smoke)), flush=True)
        return 0
    if args.smoke and args.cache:
        parser.error("--smoke builds toy models in a temporary folder; drop --cache")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        parser.error(f"unknown mode(s) {unknown}; choose among: {', '.join(MODES)}")

    with contextlib.ExitStack() as stack:
        root = args.cache or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pipeline-memory-ckpt-")))
        print(f"{'toy-size [smoke]' if args.smoke else 'real-size'} random-weight models in {root}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        build_toy_models(root) if args.smoke else build_checkpoints(root)
        write_manifest(root, args.smoke)
        if args.step_cost:
            step_cost(root, args.smoke, args.step_cost)
            return 0
        results = []
        for mode in modes:
            print(f"measuring {mode} …", flush=True)
            results.append(run_worker(mode, root, args.device, args.timeout, args.smoke))
        ok = report(results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
