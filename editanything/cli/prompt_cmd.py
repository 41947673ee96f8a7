"""`editanything prompt "river, tiger, sunset"`: a few words → a prompt (and negative prompt) for an image model."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import InvalidInputError
from ..generate import load_styles, pick_styles
from ..types import GenerationParams, wrap_seed
from ..generate.prompts import apply_styles
from ..prompting import TARGETS, Expansion, check_words
from .expand_opts import add_expander_options, build_expander


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prompt", help="expand a few words into a prompt and negative prompt for an image model",
        description="Write a prompt from a few words, for the target image model: comma-separated tags within CLIP's "
                    "75 tokens for Stable Diffusion 1.5 and SDXL, sentences for FLUX.2 [klein], prose within the "
                    "service's limit for OpenAI and Stability AI. The default expander is auto: a local language "
                    "model when its weights are on disk, else `rules`, which is rule-based (keyword slots: subject, "
                    "setting, lighting, medium, style, quality), not a language model.",
    )
    p.add_argument("words", nargs="?", default="", metavar="WORDS", help='e.g. "river, tiger, mountain, trees, sunset"')
    p.add_argument("--target", default="sd15", choices=list(TARGETS),
                   help="the image model the prompt is for (default sd15)")
    add_expander_options(p)
    p.add_argument("--n", type=int, default=1, help="how many prompts (seeds SEED, SEED+1, …; default 1)")
    p.add_argument("--seed", type=int, default=-1, help="-1 (default): random; the same seed gives the same prompt")
    p.add_argument("--json", action="store_true", help="print a JSON list of expansions (for scripts)")
    p.add_argument("--image", metavar="PHOTO", help="start from the captioner's description of this photo "
                                                    "(WORDS, if given, are added to it)")
    p.add_argument("--style", action="append", default=[], metavar="NAME",
                   help="a saved style applied after expansion (see --styles-file)")
    p.add_argument("--styles-file", metavar="FILE", help="saved styles: the WebUI's styles.csv or a JSON file")
    p.add_argument("-q", "--quiet", action="store_true", help="no library warnings or log lines")
    p.set_defaults(run=run)


def _caption(path: str) -> str:
    from ..caption import get_captioner
    from ..imageio import read_image

    image = read_image(path)  # a bad file is one line before any model loads
    return get_captioner("auto").caption(image)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.n <= 64:
        raise InvalidInputError(f"--n must be in 1..64; got {args.n}")
    GenerationParams(seed=args.seed)  # the same seed check as generation's
    styles = []
    if args.style:
        if not args.styles_file:
            raise InvalidInputError("--style needs --styles-file (the WebUI's styles.csv or a JSON file)")
        styles = pick_styles(load_styles(args.styles_file), args.style)
    if not args.image and not args.words.strip():
        raise InvalidInputError('nothing to expand: give a few words, e.g. "river, tiger, mountain, sunset", '
                                "or --image PHOTO")
    expander = build_expander(args)
    words = args.words
    if args.image:
        caption = _caption(args.image)
        words = ", ".join(w for w in (caption.strip(), args.words.strip()) if w)
        print(f"caption: {caption}", file=sys.stderr)
    words = check_words(words)  # before anything is printed: bad input is the only line
    seed = args.seed if args.seed != -1 else GenerationParams().resolve_seed()
    if not args.json:
        print(f"expander: {expander.describe()}; target {TARGETS[args.target].label}", file=sys.stderr)
    out: list[Expansion] = []
    for i in range(args.n):
        expansion = expander.expand(words, args.target, wrap_seed(seed + i))
        if styles:
            prompt, negative = apply_styles(expansion.prompt, expansion.negative_prompt, styles)
            expansion = Expansion(**{**expansion.to_dict(), "prompt": prompt, "negative_prompt": negative})
        out.append(expansion)
    if args.json:
        print(json.dumps([e.to_dict() for e in out], ensure_ascii=False, indent=2))
        return 0
    for i, e in enumerate(out):
        if i:
            print()
        print(e.prompt)
        if e.negative_prompt:
            print(f"Negative prompt: {e.negative_prompt}")
        print(f"seed {e.seed}{'; ' + e.notes if e.notes else ''}", file=sys.stderr)
    return 0

