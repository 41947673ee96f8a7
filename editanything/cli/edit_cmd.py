"""`editanything edit IMAGE... -o OUT` and `editanything replay OUT.png`."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..batch import edit_folder, edit_jobs, pending
from ..errors import InvalidInputError
from ..generate import GenerationParams, load_styles, model_defaults, pick_styles, sampler_names
from ..generate.base import DiffusersGenerator
from ..generate.diffusion import NEEDS_CONTROL_IMAGE
from ..generate.params import describe_defaults
from ..generate.prompts import apply_styles
from ..imageio import check_writable_folder, read_image
from ..memory import low_memory_default
from ..naming import output_tag
from ..storage import check_uris
from . import progress_bar, remote_opts
from .common import (MODEL_HELP, add_matte_options, add_selection_options, check_inputs_exist, detector_options,
                     matte_backend, read_mask, selection_prompt)
from .engine_opts import add_engine_options, engine_from_args, print_engine
from .expand_opts import add_expand_options, expand_from_args
from .sketch_cmd import print_report

if TYPE_CHECKING:
    from ..pipeline import EditRequest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "edit", help="select something (text, clicks, boxes, mask) and replace, remove, recolor it or its background",
        description="Edit photos by segment and regenerate. Pixels outside the (grown) selection are kept exactly. "
                    "Each output PNG carries WebUI-style parameters and the full recipe (see `editanything replay`).",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos, folders, glob patterns or URIs (s3://, gs://, file://)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder or URI")
    add_selection_options(p)
    what = p.add_argument_group("what to do (default: replace with --prompt)")
    mode = what.add_mutually_exclusive_group()
    mode.add_argument("--remove", action="store_true", help="fill the selection with its surroundings (LaMa or MI-GAN "
                                                            "when present, else as --model says)")
    mode.add_argument("--background", metavar="PROMPT", help="regenerate everything but the selection")
    mode.add_argument("--recolor", metavar="COLOR", help="recolour the selection (name or #rrggbb); no model needed")
    what.add_argument("--prompt", default="", help="what to put there; WebUI weights like (word:1.3) work")
    what.add_argument("--prompt-for", action="append", default=[], metavar="PHRASE=PROMPT",
                      help='a prompt per selected instance, by its whole detected phrase ("dog" is not "hot dog"), '
                           'e.g. "dog=a corgi"; repeatable')
    what.add_argument("--negative", default="", help="negative prompt")
    check = p.add_argument_group("a second look after the edit")
    check.add_argument("--check", metavar="PHRASE", help='with --prompt: the detector must find PHRASE (e.g. "a corgi") '
                                                         "in the edited region, else the edit is retried")
    check.add_argument("--no-check", action="store_true", help="--remove with --select looks again for the phrase "
                                                               "in the edited region and retries when it is still "
                                                               "found; this turns that off")
    check.add_argument("--retries", type=int, default=2, metavar="N",
                       help="retries after a failed check: the next seed, or the next remover (LaMa, MI-GAN, "
                            "Stable Diffusion, OpenCV's fill, as present); still failing, the output is written "
                            "and the photo counts as failed (default 2)")
    what.add_argument("--style", action="append", default=[], metavar="NAME", help="a saved style (see --styles-file)")
    what.add_argument("--styles-file", metavar="FILE", help="saved styles: the WebUI's styles.csv or a JSON file")
    gen = p.add_argument_group("generation (Stable Diffusion WebUI names)")
    # None: the model's own default (Generator.default_params), filled in once the generator is known
    gen.add_argument("--sampler", help=f"one of: {', '.join(sampler_names())} (default: the model's: Euler for "
                                       "FLUX.2 klein, DPM++ 2M Karras for Stable Diffusion)")
    gen.add_argument("--steps", type=int, help="sampling steps (default: the model's: 4 for the distilled FLUX.2 "
                                               "klein, 25 for Stable Diffusion)")
    gen.add_argument("--cfg", type=float, help="CFG scale (default: the model's: 1 for the distilled FLUX.2 klein, "
                                               "7 for Stable Diffusion)")
    gen.add_argument("--strength", type=float, default=1.0, help="denoising strength (default 1)")
    gen.add_argument("--seed", type=int, default=-1, help="-1 = random; the real seed is saved in the PNG")
    gen.add_argument("--batch-size", type=int, default=1, metavar="N",
                     help="images per batch, each from its own seed (seed, seed+1, …); default 1")
    gen.add_argument("--batch-count", type=int, default=1, metavar="N",
                     help="batches in a row; a photo gets batch-size x batch-count images, saved as NAME.png, "
                          "NAME-1.png, … (default 1)")
    gen.add_argument("--resolution", type=int, default=512, help="long side of the crop at generation (default 512)")
    gen.add_argument("--model", default="auto", help=f"{MODEL_HELP}; --remove: LaMa or MI-GAN first")
    gen.add_argument("--lora", action="append", default=[], metavar="PATH:SCALE",
                     help="a LoRA file (.safetensors) and its weight, e.g. style.safetensors:0.8; repeatable")
    gen.add_argument("--embedding", action="append", default=[], metavar="PATH:TOKEN", help="textual inversion")
    gen.add_argument("--controlnet", action="append", default=[], choices=["inpaint", "canny", "lines", "seg"],
                     help="add a ControlNet; inpaint, canny and lines derive their control image from the photo")
    gen.add_argument("--control-image", action="append", default=[], metavar="KIND=PNG",
                     help="a control image for a ControlNet, e.g. seg=segmentation.png (ADE20K colours)")
    remote_opts.add_options(p)
    add_expand_options(p)
    out = p.add_argument_group("mask and output")
    out.add_argument("--grow", type=float, default=8.0, metavar="PX", help="grow the selection (default 8)")
    out.add_argument("--feather", type=float, default=8.0, metavar="PX", help="blend width inside the edge of the edited (grown) area (default 8)")
    out.add_argument("--full-image", action="store_true", help="generate over the whole image, not a crop around the mask")
    add_matte_options(out, "with --background or --recolor: ")
    out.add_argument("--workers", type=int, default=None,
                     help="parallel photos (default 1: deep models take all cores; with Ray: one per CPU or GPU share)")
    out.add_argument("--low-memory", action=argparse.BooleanOptionalAction, default=None,
                     help="free the detector and segmenter before Stable Diffusion loads, its text encoder once "
                          "the prompt is encoded and its UNet before the VAE decodes (reloaded per photo; same "
                          "pixels). Default: as EDITANYTHING_LOW_MEMORY=1/0 says, else on for a single photo making "
                          "one image (nothing is reused) or when less memory is available than twice what keeping "
                          "the models loaded takes (their size on disk + 2 GB)")
    out.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress bar, library warnings or log lines")
    add_engine_options(p)
    p.set_defaults(run=run_edit)

    r = sub.add_parser("replay", help="re-run the recipe stored in an output PNG",
                       description="Re-run an edit, a generated image or an sd-lineart sketch from the recipe in its "
                                   "PNG. With the same models and device the image is reproduced exactly.")
    r.add_argument("result", metavar="OUT.png", help="an image written by edit or generate (or an sd-lineart sketch)")
    saved = r.add_mutually_exclusive_group()
    saved.add_argument("-o", "--output", metavar="NEW.png|FOLDER",
                       help="save the replayed image as NEW.png, or in FOLDER as OUT.replay.png (default: compare "
                            "only, write nothing)")
    saved.add_argument("--beside", action="store_true", help="save it beside OUT.png, as OUT.replay.png")
    r.add_argument("--image", help="the input photo (of an edit or img2img), if it moved since (default: its recorded "
                                   "path, then a file of that name beside OUT.png)")
    r.add_argument("--control-image", action="append", default=[], metavar="KIND=PNG",
                   help="the control image the edit used, e.g. seg=segmentation.png, if it moved")
    r.add_argument("-q", "--quiet", action="store_true", help="no library warnings or progress bars")
    r.set_defaults(run=run_replay)


def _prompt_for(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        phrase, sep, prompt = item.partition("=")
        if not sep or not phrase.strip() or not prompt.strip():
            raise InvalidInputError(f'--prompt-for expects PHRASE=PROMPT, e.g. "dog=a corgi"; got {item!r}')
        out[phrase.strip()] = prompt.strip()
    return out


def _generator_options(args: argparse.Namespace) -> dict:
    embeddings = []
    for item in args.embedding:
        path, sep, token = item.rpartition(":")
        if not sep:
            raise InvalidInputError(f"--embedding expects PATH:TOKEN; got {item!r}")
        embeddings.append((path, token))
    options = {"loras": list(args.lora), "embeddings": embeddings, "controlnets": list(getattr(args, "controlnet", []))}
    return {k: v for k, v in options.items() if v}


def _styled(args: argparse.Namespace, prompt: str, negative: str) -> tuple[str, str]:
    if not args.style:
        return prompt, negative
    if not args.styles_file:
        raise InvalidInputError("--style needs --styles-file (the WebUI's styles.csv or a JSON file)")
    return apply_styles(prompt, negative, pick_styles(load_styles(args.styles_file), args.style))


def build_request(args: argparse.Namespace):
    from ..pipeline import EditRequest

    prompt, negative = _styled(args, args.background or args.prompt, args.negative)
    params = GenerationParams(
        prompt=prompt, negative_prompt=negative, sampler=args.sampler, steps=args.steps, cfg_scale=args.cfg,
        strength=args.strength, seed=args.seed, batch_size=args.batch_size, batch_count=args.batch_count,
        resolution=args.resolution,
    )
    mode = "remove" if args.remove else "background" if args.background else "recolor" if args.recolor else "replace"
    files = _control_files(args.control_image, args.controlnet)
    missing = [kind for kind in args.controlnet if kind in NEEDS_CONTROL_IMAGE and kind not in files]
    if missing:
        raise InvalidInputError(f"--controlnet {missing[0]} needs its control image: add --control-image "
                                f"{missing[0]}=PNG (a segmentation in ADE20K colours, the size of the photo)")
    control = {kind: read_image(path) for kind, path in files.items()}
    mask = None
    if args.mask:
        first = read_image(args.images[0]) if Path(args.images[0]).is_file() else None
        mask = read_mask(args.mask, first.shape[:2] if first is not None else None)
    return EditRequest(
        mode=mode, selection=selection_prompt(args), mask=mask, params=params, keep=args.keep,
        keep_phrases=args.keep_phrase, prompt_for=_prompt_for(args.prompt_for), grow=args.grow,
        feather=args.feather, full_image=args.full_image, color=args.recolor, control=control,
        control_files=files, matte=args.matte, matte_band=args.matte_band, check=_check_phrase(args, mode),
        retries=args.retries,
    )


def _check_phrase(args: argparse.Namespace, mode: str) -> str | None:
    """What the edit's second look searches for: --check's phrase (replace), or --select's (remove)."""
    if args.check is not None:
        if args.no_check:
            raise InvalidInputError("--check and --no-check contradict each other; keep one")
        if mode != "replace":
            raise InvalidInputError("--check PHRASE is for a replace (--prompt): it must find the new thing; "
                                    "--remove looks again for its --select phrase by itself")
        return args.check
    return args.select if mode == "remove" and args.select and not args.no_check else None


def expand_request(args: argparse.Namespace, request: EditRequest, editor: dict) -> EditRequest:
    """With --expand, the request whose prompt the expander wrote from the user's words (styles applied
    after it), for the generator the edit will use; the request unchanged otherwise."""
    from ..pipeline import Editor
    from ..prompting import target_for

    if not args.expand:
        expand_from_args(args, "", target="sd15", seed=0)  # checks that no expander option came alone
        return request
    if request.mode not in ("replace", "background") or request.prompt_for:
        what = "--prompt-for" if request.prompt_for else f"--{request.mode}"
        raise InvalidInputError(f"--expand writes the prompt of a replace (--prompt) or --background edit; "
                                f"{what} does not take one")
    if getattr(args, "dry_run", False) and args.expander == "openai":
        raise InvalidInputError("--dry-run sends nothing, but --expander openai would send the words to OpenAI: "
                                "dry-run with --expander rules (or auto) instead")
    params = request.params.with_seed()  # the expansion's seed is the edit's, and the recipe holds both
    expansion = expand_from_args(args, args.background or args.prompt, seed=params.seed, negative=args.negative,
                                 target=target_for(Editor(**editor).generator))
    prompt, negative = _styled(args, expansion.prompt, expansion.negative_prompt)
    params = dataclasses.replace(params, prompt=prompt, negative_prompt=negative)
    return dataclasses.replace(request, params=params, expansion=expansion.to_dict())


def _expand_asked(args: argparse.Namespace) -> dict[str, Any] | None:
    """What --expand adds to a request's name: how the words are to be expanded."""
    if not args.expand:
        return None
    return {"expand": True, "expander": args.expander, "llm_model": args.llm_model}


def _control_files(items: list[str], kinds: list[str] | None) -> dict[str, str]:
    """`KIND=PNG` options as {kind: path}; with `kinds`, each KIND must be one of them."""
    files = {}
    for item in items:
        kind, sep, path = item.partition("=")
        if not sep or not path or (kinds is not None and kind not in kinds):
            raise InvalidInputError(f"--control-image expects KIND=PNG for a --controlnet KIND you added; got {item!r}")
        files[kind] = path
    return files


def _captioner_if_present() -> str | None:
    from ..caption import captioner_on_disk

    return "auto" if captioner_on_disk() is not None else None


def run_edit(args: argparse.Namespace) -> int:
    from ..pipeline import Editor

    start = time.perf_counter()
    # Everything that can be checked without a model is checked here, in this order, before any loads.
    request = build_request(args)
    editor = {
        "detector": args.detector, "segmenter": args.segmenter, "generator": args.model,
        "captioner": _captioner_if_present(), "detector_options": detector_options(args),
        "generator_options": _generator_options(args), "low_memory": args.low_memory,
    }
    if matte_backend(args) is not None:  # only when asked: "auto" keeps the output names of before
        editor["matter"] = args.matte_backend
    remote_opts.apply(args, editor)
    if args.dry_run:  # sends and writes nothing: no output folder either
        return remote_opts.dry_run(args, expand_request(args, request, editor), Editor(**editor))
    workers = args.workers if args.workers is not None or args.engine != "local" else 1
    engine_from_args(args, workers)  # its options are checked before anything else
    check_uris(args.images)
    check_inputs_exist(args.images)
    check_writable_folder(args.output)
    # Named by the request as asked: before the model's defaults fill it in, and before --expand writes
    # the prompt (the words and how to expand them name it), so a re-run finds its outputs with no model.
    tag = output_tag(request, editor, _expand_asked(args))
    jobs, problems = edit_jobs(args.images, args.output, request, editor, tag)
    todo = jobs if args.overwrite else pending(jobs)
    if jobs and not todo and not problems:
        print(f"nothing to do: the outputs of this request ({', '.join(j.output.name for j in jobs[:3])}"
              f"{', …' if len(jobs) > 3 else ''}) are in {args.output} already; --overwrite redoes them")
        return 0
    request = expand_request(args, request, editor)  # a local language model may load here
    # else each worker (process or Ray actor) loads its own models: the parent must not load them too
    in_process = workers == 1 and args.engine == "local"
    if args.low_memory is None:
        # One photo, one generation: no model is used again, so each is released after its last use for free.
        editor["low_memory"] = low_memory_default(one_shot=in_process and len(todo) == 1 and _one_generation(request))
    probe = Editor(**editor)
    generator = None
    if request.mode != "recolor":
        generator = probe.remover if request.mode == "remove" else probe.generator  # building it loads nothing yet
        probe.check_generator(request.mode, generator)  # once, up front, not once per photo
        if hasattr(generator, "for_edit"):  # a hosted service checks the request against its endpoint
            generator.for_edit(request)
    # resolved here, once, so every worker or Ray actor runs (and every recipe records) the same values
    request, taken = _with_model_defaults(request, generator)
    if generator is not None:
        if hasattr(generator, "check_params"):  # parameters the model cannot honour fail here, not per photo
            generator.check_params(request.params)
        role = "remover" if generator is not probe.generator else "generator"
        print(f"{role}: {generator.describe() if hasattr(generator, 'describe') else generator.name}", file=sys.stderr)
        if taken:
            print(f"settings: {taken} (the model's defaults)", file=sys.stderr)
    # In this process the models load now, so the summary can show that time apart from the photos'
    # (with --low-memory the generator still waits until the selection is done).
    loading_start = time.perf_counter()
    if in_process and request.mask is None and not request.selection.text:
        print(f"segmenter: {probe.segmenter.describe()}", file=sys.stderr)
    if request.selection.text and request.mask is None:
        # a missing detector stops here, once, with the download command
        if in_process:
            probe.detector
        else:
            _check_detector_files(args.detector)
    if request.matte:  # a missing ViTMatte stops here, once, with the download command
        if in_process:
            print(f"matte: {probe.matter.describe()}", file=sys.stderr)
        else:
            _check_model_files(editor.get("matter", "auto"))
    if in_process and hasattr(generator, "load") and not probe.low_memory:
        generator.load()
    loading = time.perf_counter() - loading_start if in_process else None
    # A local diffusion model on Ray: one copy per few CPUs, not one per CPU
    engine = engine_from_args(args, workers, heavy=isinstance(generator, DiffusersGenerator))
    with progress_bar.step_bar(in_process and not args.quiet and progress_bar.on_terminal()):
        report = edit_folder(args.images, args.output, request, editor=editor, workers=workers, engine=engine,
                             overwrite=args.overwrite, progress=progress_bar.batch_progress(args.quiet, "edit"),
                             prebuilt=probe if in_process else None, tag=tag, nice=args.nice)
    print_engine(engine)
    print_report(report, args.output, time.perf_counter() - start, loading=loading,
                 images_per_job=request.params.n_images)
    return 0 if report.ok else 1


def _one_generation(request: EditRequest) -> bool:
    """Whether an edit of one photo calls its generator once (one image, no per-instance steps, no second look)."""
    return request.params.n_images == 1 and not request.prompt_for and not request.steps and request.check is None


def _with_model_defaults(request: EditRequest, generator: Any) -> tuple[EditRequest, str]:
    """The request with the sampler, steps and CFG the user left out taken from the generator's defaults,
    and which were taken in words when the generator declares its own (FLUX.2 klein; the others get the
    WebUI's defaults, as before, and nothing to say)."""
    params, taken = params_with_defaults(request.params, generator)
    return dataclasses.replace(request, params=params), taken


def params_with_defaults(params: GenerationParams, generator: Any) -> tuple[GenerationParams, str]:
    """`params` with the generator's defaults for what was left unset, and those taken in words (see above)."""
    unset = params.unset()
    defaults = model_defaults(generator)
    taken = describe_defaults({n: defaults[n] for n in unset}) if hasattr(generator, "default_params") else ""
    return params.with_defaults(defaults), taken


def _check_model_files(name: str) -> None:
    """A catalogue model named for the workers is on disk (else ModelNotFound naming the download)."""
    from ..models import MODELS, resolve

    if name in MODELS:
        resolve(name)


def _check_detector_files(name: str) -> None:
    from ..detect import DETECTOR_MODELS, FETCH_FIRST
    from ..models import MODELS, find_model, resolve

    names = DETECTOR_MODELS if name == "auto" else (name,) if name in MODELS else ()
    if names and not any(find_model(n) for n in names):
        resolve(FETCH_FIRST if name == "auto" else name)


def run_replay(args: argparse.Namespace) -> int:
    from ..replay import replay

    output = _replay_output(args)
    with progress_bar.step_bar(not args.quiet and progress_bar.on_terminal()):
        image, recipe = replay(args.result, output, image=args.image, control=_control_files(args.control_image, None))
    print_replayed(args.result, output, image, recipe)
    return 0


def print_replayed(original: str | Path, output: Path | None, image: np.ndarray, recipe: Any) -> None:
    """One line: what was replayed, where it went, and whether it is the original pixel for pixel."""
    before = read_image(original, gray=image.ndim == 2)  # a grey sketch compares grey
    diff = int(np.abs(before.astype(np.int16) - image).max()) if before.shape == image.shape else -1
    verdict = "identical to the original" if diff == 0 else f"differs from the original (max difference {diff})"
    generator = recipe.models.get("generator", {})
    verdict = remote_opts.replay_verdict(generator, diff) or verdict
    seed = f" (seed {recipe.seed})" if recipe.seed is not None else ""
    print(f"replayed {recipe.operation} with {generator.get('name')}{seed}: {_saved(output)} ({verdict})")


def _replay_output(args: argparse.Namespace) -> Path | None:
    """Where a replay is saved: -o NEW.png, -o FOLDER (OUT.replay.png in it; a name without a suffix is a folder,
    as edit's -o is), --beside, or nowhere."""
    result = Path(args.result)
    name = f"{result.stem}.replay.png"
    if args.beside:
        return result.with_name(name)
    if not args.output:
        return None
    output = Path(args.output)
    if output.is_dir() or args.output.endswith(("/", os.sep)) or not output.suffix:
        output = output / name
    if output.suffix.lower() != ".png":
        raise InvalidInputError(f"{output}: a replay is saved as .png; give NEW.png or a folder")
    if output.resolve() == result.resolve():
        raise InvalidInputError(f"{output}: that is the image being replayed; save the replay elsewhere")
    return output


def _saved(output: Path | None) -> str:
    return str(output) if output is not None else "not saved (-o NEW.png or --beside saves it)"
