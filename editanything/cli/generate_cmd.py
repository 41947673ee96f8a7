"""`editanything generate "PROMPT" -o OUT`: text to image, image to image, and prompts files."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..generate import GenerationParams, sampler_names
from ..imageio import check_writable_folder
from ..storage import check_uris, is_uri
from . import progress_bar, remote_opts
from .edit_cmd import _generator_options, _styled, params_with_defaults
from .engine_opts import add_engine_options, engine_from_args, print_engine
from .expand_opts import add_expand_options, expand_from_args
from .sketch_cmd import print_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate", help="make images from a prompt (txt2img), or redraw pictures from one (img2img with --image)",
        description="Generate images from a prompt with Stable Diffusion 1.5, SDXL or FLUX.2 [klein]. Each PNG "
                    "carries WebUI-style parameters and the full recipe (see `editanything replay`).",
    )
    p.add_argument("prompt", nargs="?", default="", help='what the picture shows, e.g. "a tiger drinking from a '
                                                         'river at sunset"; WebUI weights like (word:1.3) work on SD 1.5')
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="a folder (written as <prompt-slug>-<seed>.png) or, for one image, a file.png")
    p.add_argument("--prompts-file", metavar="FILE",
                   help="one prompt a line, or a CSV with columns prompt,negative,seed: one job per line into the "
                        "-o folder as NNNN-<prompt-slug>.png (resumable; a bad line fails alone)")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--style", action="append", default=[], metavar="NAME", help="a saved style (see --styles-file)")
    p.add_argument("--styles-file", metavar="FILE", help="saved styles: the WebUI's styles.csv or a JSON file")
    gen = p.add_argument_group("generation (Stable Diffusion WebUI names)")
    gen.add_argument("--model", default="auto",
                     help="sd15, sdxl-base, flux2-klein-4b, a diffusers text-to-image folder or a .safetensors/.ckpt "
                          "checkpoint; auto = the best present for the device (FLUX.2 klein, then SDXL, on CUDA; "
                          "SD 1.5 on a CPU)")
    gen.add_argument("--sampler", help=f"one of: {', '.join(sampler_names())} (default: the model's)")
    gen.add_argument("--steps", type=int, help="sampling steps (default: the model's: 25, or 4 for FLUX.2 klein)")
    gen.add_argument("--cfg", type=float, help="CFG scale (default: the model's: 7, or 1 for FLUX.2 klein)")
    gen.add_argument("--seed", type=int, default=-1, help="-1 = random; the real seed is saved in the PNG and its name")
    gen.add_argument("--batch-size", type=int, default=1, metavar="N",
                     help="images per batch, each from its own seed (seed, seed+1, …); default 1")
    gen.add_argument("--batch-count", type=int, default=1, metavar="N",
                     help="batches in a row: batch-size x batch-count images a prompt (default 1)")
    gen.add_argument("--width", type=int, help="default: the model's native size (512 for SD 1.5, 1024 for SDXL "
                                               "and FLUX.2 klein); a multiple of 8 (16 for FLUX.2)")
    gen.add_argument("--height", type=int, help="as --width")
    gen.add_argument("--lora", action="append", default=[], metavar="PATH:SCALE",
                     help="a LoRA file (.safetensors) and its weight, e.g. style.safetensors:0.8; repeatable")
    gen.add_argument("--embedding", action="append", default=[], metavar="PATH:TOKEN", help="textual inversion")
    i2i = p.add_argument_group("image to image")
    i2i.add_argument("--image", action="append", default=[], metavar="PICTURE",
                     help="redraw this picture from the prompt (files, folders, glob patterns or URIs, as sketch "
                          "takes; several make a batch written as <picture>.png)")
    i2i.add_argument("--strength", type=float, default=None,
                     help="denoising strength: how far the result may move from the picture (default 0.75)")
    remote_opts.add_generate_options(p)
    add_expand_options(p)
    out = p.add_argument_group("output")
    out.add_argument("--workers", type=int, default=None, help="parallel jobs of a batch (default 1: the model "
                                                               "takes every core; each worker loads its own copy)")
    out.add_argument("--overwrite", action="store_true", help="redo outputs of a batch that already exist")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress bar, library warnings or log lines")
    add_engine_options(p)
    p.set_defaults(run=run)


def build_params(args: argparse.Namespace, prompt: str) -> GenerationParams:
    if (args.width is None) != (args.height is None):
        raise InvalidInputError("give both --width and --height, or neither (the model's native size)")
    if args.strength is not None and not args.image:
        raise InvalidInputError("--strength is how far img2img moves from --image; add --image PICTURE")
    styled, negative = _styled(args, prompt, args.negative) if prompt else (prompt, args.negative)
    from ..generation import IMG2IMG_STRENGTH

    strength = args.strength if args.strength is not None else IMG2IMG_STRENGTH if args.image else 1.0
    return GenerationParams(prompt=styled, negative_prompt=negative, sampler=args.sampler, steps=args.steps,
                            cfg_scale=args.cfg, strength=strength, seed=args.seed, batch_size=args.batch_size,
                            batch_count=args.batch_count, width=args.width, height=args.height)


def _one_file(args: argparse.Namespace) -> bool:
    return Path(args.output).suffix.lower() == ".png" and not is_uri(args.output)


def run(args: argparse.Namespace) -> int:
    from ..generation import GenerateRequest, check_size, generation_size
    from ..pipeline import Editor

    if bool(args.prompt) == bool(args.prompts_file):
        raise InvalidInputError("give a prompt, or --prompts-file FILE (not both)")
    if args.prompts_file and (args.image or args.expand):
        raise InvalidInputError("--prompts-file generates from its own prompts: it takes no --image or --expand")
    params = build_params(args, args.prompt)
    editor = {"generator": args.model, "generator_options": _generator_options(args)}
    remote_opts.apply_generate(args, editor)
    if args.dry_run and args.expand and args.expander == "openai":
        raise InvalidInputError("--dry-run sends nothing, but --expander openai would send the words to OpenAI: "
                                "dry-run with --expander rules (or auto) instead")
    probe = Editor(**editor)
    generator = probe.text_generator  # building it loads no weights yet
    single_picture = len(args.image) == 1 and Path(args.image[0]).is_file()
    batch = bool(args.prompts_file) or (args.image and not single_picture)
    if _one_file(args) and (batch or params.n_images > 1):
        raise InvalidInputError(f"-o {args.output} is one file, but this run makes several images: give a folder")
    workers = args.workers if args.workers is not None or args.engine != "local" else 1
    engine = engine_from_args(args, workers, heavy=True)  # its options are checked before anything loads
    mode = "img2img" if args.image else "txt2img"
    from ..generation import check_generator, check_params

    check_generator(generator, mode)
    if not args.image:
        check_size(generator, *generation_size(generator, params, None))
    elif params.width is not None:
        check_size(generator, params.width, params.height)
    params, taken = params_with_defaults(params, generator)
    check_params(generator, params, mode)
    if args.dry_run and batch:  # sends and writes nothing: no output folder either
        return remote_opts.dry_run_generate(args, params, probe)
    print(f"generator: {_describe(generator, mode)}", file=sys.stderr)
    if taken:
        print(f"settings: {taken} (the model's defaults)", file=sys.stderr)
    if batch:
        return _run_batch(args, params, editor, probe, workers, engine)
    params = params.with_seed()
    expansion = None
    if args.expand:
        from ..prompting import target_for

        expanded = expand_from_args(args, args.prompt, seed=params.seed, negative=args.negative,
                                    target=target_for(generator))
        prompt, negative = _styled(args, expanded.prompt, expanded.negative_prompt)
        params = dataclasses.replace(params, prompt=prompt, negative_prompt=negative)
        expansion = expanded.to_dict()
    else:
        expand_from_args(args, "", target="sd15", seed=0)  # no expander option without --expand
    if args.dry_run:
        return remote_opts.dry_run_generate(args, params, probe)
    image = source = None
    if args.image:
        from ..imageio import read_image

        check_uris(args.image)
        source = args.image[0]
        image = read_image(source)
    if not _one_file(args):
        check_writable_folder(args.output)
    with progress_bar.step_bar(not args.quiet and progress_bar.on_terminal()):
        result = probe.generate(GenerateRequest(params, image=image, expansion=expansion),
                                source=str(source) if source else None)
    names = [Path(args.output)] if _one_file(args) else _names(Path(args.output), _slug(args.prompt), result)
    inputs = (source,) if source else ()
    for i, name in enumerate(names):
        result.save(name, i, inputs=inputs)
        print(name)
    return 0


def _describe(generator: Any, mode: str) -> str:
    if hasattr(generator, "describe_generation"):  # a hosted one: say what leaves the machine
        return generator.describe_generation(mode)
    return generator.describe() if hasattr(generator, "describe") else generator.name


def _slug(prompt: str) -> str:
    from ..generate_batch import slug

    return slug(prompt)


def _names(folder: Path, slug: str, result: Any) -> list[Path]:
    """<slug>-<seed>.png; where the service takes no seed, <slug>-<n>.png from the first n not taken yet."""
    from ..types import wrap_seed

    seed = result.recipe.seed
    if seed is not None:
        return [folder / f"{slug}-{wrap_seed(seed + i)}.png" for i in range(len(result.images))]
    names, n = [], 0
    while len(names) < len(result.images):
        if not (folder / f"{slug}-{n}.png").exists():
            names.append(folder / f"{slug}-{n}.png")
        n += 1
    return names


def _run_batch(args: argparse.Namespace, params: GenerationParams, editor: dict, probe: Any, workers: int,
               engine: Any) -> int:
    from ..generate_batch import generate_folder, generate_prompts

    expand_from_args(args, "", target="sd15", seed=0)
    in_process = workers == 1 and args.engine == "local"
    common = dict(editor=editor, workers=workers, engine=engine, overwrite=args.overwrite,
                  progress=progress_bar.batch_progress(args.quiet, "generate"), prebuilt=probe if in_process else None,
                  nice=args.nice)
    start = time.perf_counter()
    with progress_bar.step_bar(in_process and not args.quiet and progress_bar.on_terminal()):
        if args.prompts_file:
            report = generate_prompts(args.prompts_file, args.output, params,
                                      styled=(lambda p, n: _styled(args, p, n)) if args.style else None, **common)
        else:
            report = generate_folder(args.image, args.output, params, **common)
    print_engine(engine)
    print_report(report, args.output, time.perf_counter() - start)
    return 0 if report.ok else 1
