"""`--expand` for every command that generates from a prompt: `add_expand_options(parser)` and
`expand_from_args(args, words, target=…, seed=…)`. A command adds the options, calls the function
with the user's words before generating, and puts the returned expansion's prompt (and negative
prompt) into its parameters and the `Expansion` into its recipe."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import InvalidInputError
from ..prompting import EXPANDER_NAMES, TARGETS, Expansion, get_expander
from ..prompting.local import PRECISIONS

EXPANDER_HELP = ("auto (default: the local language model when its weights are on disk, else rules; never a paid "
                 "service), rules (rule-based keyword slots, not a language model: no weights, instant), "
                 "smollm2-135m-instruct (a local language model, int8 on a CPU: `editanything models download "
                 "smollm2-135m-instruct`), smollm2-360m-instruct (larger and slower), magicprompt-sd (MagicPrompt, "
                 "a GPT-2 that continues the words into Stable Diffusion tags; SD targets only), openai (the "
                 "Responses API, key in OPENAI_API_KEY: the words leave the machine)")


def add_expander_options(p: argparse.ArgumentParser | Any) -> None:
    """--expander and --llm-model (shared by `prompt` and `--expand`)."""
    p.add_argument("--expander", default="auto", choices=EXPANDER_NAMES, metavar="NAME", help=EXPANDER_HELP)
    p.add_argument("--llm-model", metavar="ID", help="the OpenAI model for --expander openai (default gpt-5.4-mini)")
    p.add_argument("--llm-precision", choices=PRECISIONS, metavar="P",
                   help="how a local language model runs: int8 (default on a CPU: int8 Linear layers, 2-3x "
                        "faster than float32, a slightly different answer), float32 (the unquantized model), "
                        "float16 (default on CUDA); the recipe records it")


def add_expand_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("prompt expansion (a few words → a prompt written for the model)")
    g.add_argument("--expand", action="store_true",
                   help="expand the prompt before generating and print the prompt used; the recipe keeps your words, "
                        "the expansion, the expander and its model hash, so replay needs no language model")
    add_expander_options(g)


def build_expander(args: argparse.Namespace):
    if args.llm_model and args.expander != "openai":
        raise InvalidInputError("--llm-model picks the OpenAI model; add --expander openai")
    if getattr(args, "llm_precision", None) and args.expander in ("rules", "openai"):
        raise InvalidInputError(f"--llm-precision is for a local language model, not --expander {args.expander}")
    options = {"model": args.llm_model} if args.llm_model else {}
    if getattr(args, "llm_precision", None):
        options["precision"] = args.llm_precision
    return get_expander(args.expander, **options)


def expand_from_args(args: argparse.Namespace, words: str, *, target: str, seed: int,
                     negative: str = "") -> Expansion | None:
    """The expansion of `words` when `--expand` is on (None otherwise), printed on stderr. A negative prompt
    the user gave wins over the expander's."""
    if not getattr(args, "expand", False):
        if (getattr(args, "llm_model", None) or getattr(args, "llm_precision", None)
                or getattr(args, "expander", "auto") != "auto"):
            raise InvalidInputError("--expander, --llm-model and --llm-precision go with --expand")
        return None
    if target not in TARGETS:
        raise InvalidInputError(f"unknown prompt target {target!r}")
    expander = build_expander(args)
    expansion = expander.expand(words, target, seed)
    if negative:
        expansion = Expansion(**{**expansion.to_dict(), "negative_prompt": negative})
    print(f"expanded prompt ({expansion.expander}, for {TARGETS[target].label}, seed {seed}): {expansion.prompt}",
          file=sys.stderr)
    if expansion.negative_prompt:
        print(f"negative prompt: {expansion.negative_prompt}", file=sys.stderr)
    return expansion
