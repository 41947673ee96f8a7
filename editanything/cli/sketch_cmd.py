"""`editanything sketch INPUT... -o OUTDIR`: photos to pencil / ink / line-art drawings."""

from __future__ import annotations

import argparse
import sys
import time

from ..batch import OUTPUT_FORMATS, BatchReport, default_workers, sketch_folder
from ..edges.hed import RUNTIMES
from ..errors import InvalidInputError
from ..prompting import Expansion
from ..sketch import ALL_STYLES, GENERATIVE_STYLES, style_params
from ..sketch.generative import PRESETS
from ..types import GenerationParams
from . import progress_bar
from .engine_opts import add_engine_options, engine_from_args, print_engine
from .expand_opts import add_expand_options, expand_from_args


def register(sub: argparse._SubParsersAction) -> None:
    styles_help = "; ".join(
        f"{s}: " + (", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in style_params(s).items())
                    or "no parameters") for s in ALL_STYLES
    )
    p = sub.add_parser(
        "sketch", help="turn photos into pencil, ink or line-art sketches (batch, parallel, resumable)",
        description="Turn photos into sketches. Finished outputs are skipped on re-run; a bad file is "
                    "reported at the end and makes the exit status 1, the rest of the batch still runs.",
        epilog=f"style parameters (set with --param NAME=VALUE): {styles_help}. The hed styles' runtime (how HED's "
               f"network runs) is one of auto, {', '.join(RUNTIMES)}; auto: onnx-int8 on a CPU with onnxruntime "
               f"installed, else nnpack where PyTorch has it, else torch (the drawings from before runtimes existed).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive), glob patterns, or URIs "
                   "(s3://, gs://, file://)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder or URI (keeps folder structure)")
    p.add_argument("--style", default="pencil", choices=ALL_STYLES,
                   help="drawing style (default: pencil); sd-lineart: Stable Diffusion 1.5 redraws the photo")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a style parameter; repeatable")
    p.add_argument("--workers", type=int, default=None, help=f"processes, or Ray actors (default: CPU count, {default_workers()} here; "
                   "with Ray: the cluster's CPUs; sd-lineart: 1 locally, as its model takes every core, and each "
                   "worker loads its own copy)")
    p.add_argument("--max-side", type=int, default=None, metavar="PX", help="shrink photos whose longer side exceeds PX")
    p.add_argument("--format", default="png", choices=OUTPUT_FORMATS, help="output format (default: png)")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, library warnings or log lines")
    gen = p.add_argument_group("sd-lineart",
                               "shortcuts for its --param prompt=…, negative_prompt=…, preset=…, seed=…")
    gen.add_argument("--prompt", help='what kind of drawing, e.g. "pencil drawing, cross-hatching" '
                                      "(default: the preset's)")
    gen.add_argument("--negative-prompt", metavar="TEXT", help="what to avoid (default: the preset's)")
    gen.add_argument("--preset", choices=list(PRESETS), help="prompts for a pencil drawing (default) or anime line art")
    gen.add_argument("--seed", type=int, help="-1 (default): a random seed per photo; each PNG records its own")
    add_expand_options(p)
    add_engine_options(p)
    p.set_defaults(run=run)


def parse_params(items: list[str]) -> dict[str, object]:
    """`["sigma=4", "invert=true"]` → `{"sigma": 4, "invert": True}`."""
    params: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInputError(f"--param expects NAME=VALUE; got {item!r}")
        params[name.strip().replace("-", "_")] = _parse_value(raw.strip())
    return params


def _parse_value(raw: str) -> object:
    lowered = raw.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    engine = engine_from_args(args, args.workers, heavy=args.style in GENERATIVE_STYLES)
    params = parse_params(args.param)
    for name in ("prompt", "negative_prompt", "preset", "seed"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    if args.style in GENERATIVE_STYLES and (args.workers or 1) > 1 and engine == "local" and not args.quiet:
        print(f"note: --workers {args.workers} loads {args.workers} copies of Stable Diffusion and its ControlNet "
              "(about 6 GB each in float32 on a CPU, half that in float16 on a GPU) and splits the cores "
              "between them", file=sys.stderr)
    expansion = _expansion(args, params)
    # sd-lineart runs in this process unless --workers says otherwise: its steps can draw a bar
    in_process = args.style in GENERATIVE_STYLES and (args.workers or 1) == 1 and engine == "local"
    with progress_bar.step_bar(in_process and not args.quiet and progress_bar.on_terminal()):
        report = sketch_folder(
            args.inputs, args.output, style=args.style, params=params, workers=args.workers,
            max_side=args.max_side, fmt=args.format, overwrite=args.overwrite,
            progress=progress_bar.batch_progress(args.quiet, f"sketch:{args.style}"), engine=engine,
            expansion=expansion.to_dict() if expansion else None, nice=args.nice,
        )
    print_engine(engine)
    print_report(report, args.output, time.perf_counter() - start)
    return 0 if report.ok else 1


def _expansion(args: argparse.Namespace, params: dict[str, object]) -> Expansion | None:
    """--expand: the sd-lineart prompt written from --prompt's words, put in `params`; one expansion for every
    photo (its seed is --seed, or a random one)."""
    if args.expand and args.style not in GENERATIVE_STYLES:
        raise InvalidInputError(f"--expand writes a prompt for --style {', '.join(GENERATIVE_STYLES)}; "
                                f"--style {args.style} takes none")
    words = str(params.get("prompt") or "")
    if args.expand and not words.strip():
        raise InvalidInputError('--expand needs words to expand: add --prompt, e.g. --prompt "ink drawing, harbour"')
    seed = args.seed if args.seed not in (None, -1) else GenerationParams().resolve_seed()
    expansion = expand_from_args(args, words, target="sd15", seed=seed,
                                 negative=str(params.get("negative_prompt") or ""))
    if expansion is not None:
        params["prompt"], params["negative_prompt"] = expansion.prompt, expansion.negative_prompt
    return expansion


def print_report(report: BatchReport, outdir: str, seconds: float, *, loading: float | None = None,
                 images_per_job: int = 1) -> None:
    """The end of a batch: one line per failed file, then the totals. `seconds` is the whole run;
    `loading`, the part of it spent loading models before the first photo, when it was measured."""
    for line in report.failure_lines():
        print(f"failed: {line}", file=sys.stderr)
    images = len(report.done) * images_per_job
    working = seconds - (loading or 0.0)
    rate = images / working if working > 0 and images else 0.0
    loaded = f"models loaded in {loading:.1f} s, then " if loading is not None else ""
    print(f"{report.summary(images_per_job)} in {seconds:.1f} s ({loaded}{rate:.1f} img/s); outputs in {outdir}")
