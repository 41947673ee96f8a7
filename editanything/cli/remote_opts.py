"""The `edit` and `generate` options for hosted generators (Stability AI, OpenAI): choice, settings, dry run,
replay note."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import EditAnythingError, InvalidInputError

REMOTE = ("stability", "openai")


def add_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("hosted generators (the crop around the mask is uploaded to the service)")
    g.add_argument("--generator", choices=REMOTE,
                   help="generate with Stability AI (key in STABILITY_API_KEY) or OpenAI (key in OPENAI_API_KEY) "
                        "instead of --model; only the crop around the selection leaves the machine")
    g.add_argument("--remote-model", default="gpt-image-1", metavar="NAME",
                   help="OpenAI model that edits with a mask: gpt-image-1 (default), gpt-image-1-mini, gpt-image-1.5, "
                        "gpt-image-2, chatgpt-image-latest, dall-e-2")
    g.add_argument("--search-and-replace", action="store_true",
                   help="with --generator stability, --select and --prompt: Stability finds what --select says "
                        "inside the crop and replaces it (its search-and-replace endpoint) instead of using the mask")
    g.add_argument("--dry-run", action="store_true",
                   help="print what would be sent (endpoint, crop size, parameters, cost) without sending or writing")
    g.add_argument("--allow-insecure", action="store_true",
                   help="let the key and the crop go over plain http:// to another machine (STABILITY_BASE_URL or "
                        "OPENAI_BASE_URL on a trusted network); without it such a base URL is refused")


def apply(args: argparse.Namespace, editor: dict[str, Any]) -> None:
    """Point the Editor settings at the hosted generator the options ask for (or check none is half-asked)."""
    if not args.generator:
        _refuse((("--search-and-replace", args.search_and_replace), ("--dry-run", args.dry_run),
                 ("--remote-model", args.remote_model != "gpt-image-1"), ("--allow-insecure", args.allow_insecure)),
                "go with --generator stability or openai")
        return
    _refuse((("--lora", args.lora), ("--embedding", args.embedding), ("--controlnet", args.controlnet),
             ("--model", args.model != "auto")),
            f"are for local Stable Diffusion; --generator {args.generator} runs at the service")
    options: dict[str, Any] = {"dry_run": args.dry_run, "allow_insecure": args.allow_insecure}
    if args.generator == "stability":
        options["search_and_replace"] = args.search_and_replace
    elif args.search_and_replace:
        raise InvalidInputError("--search-and-replace is a Stability AI endpoint; OpenAI has none")
    if args.generator == "openai":
        options["model"] = args.remote_model
    elif args.remote_model != "gpt-image-1":
        raise InvalidInputError("--remote-model picks an OpenAI model; Stability AI's endpoint is the model")
    editor["generator"], editor["generator_options"] = args.generator, options


def dry_run(args: argparse.Namespace, request: Any, editor: Any) -> int:
    """Select locally, build each photo's request, print it; nothing is sent and nothing is written."""
    from ..batch import collect_inputs
    from ..generate.remote import DryRun
    from ..imageio import read_image

    editor.remover if request.mode == "remove" else editor.generator  # a refused base URL stops here, once
    found, missing = collect_inputs(args.images)
    failed = len(missing)
    for path, reason in missing:
        print(f"{path}: {reason}", file=sys.stderr)
    for source, _ in found:
        try:
            editor.edit(read_image(source), request, source=str(source))
        except DryRun as plan:
            print(f"{source}: {plan}")
        except EditAnythingError as exc:
            print(f"{source}: error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def add_generate_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("hosted generation (the prompt, and an --image, are sent to the service)")
    g.add_argument("--generator", choices=REMOTE,
                   help="generate with Stability AI (key in STABILITY_API_KEY) or OpenAI (key in OPENAI_API_KEY) "
                        "instead of --model")
    g.add_argument("--remote-model", metavar="NAME",
                   help="Stability AI: core (default; text only), ultra, sd3 (= sd3.5-large), sd3.5-large, "
                        "sd3.5-large-turbo, sd3.5-medium; OpenAI: gpt-image-1 (default), gpt-image-1-mini, "
                        "gpt-image-1.5, gpt-image-2, chatgpt-image-latest")
    g.add_argument("--dry-run", action="store_true",
                   help="print what would be sent (endpoint, fields, cost) without sending or writing")
    g.add_argument("--allow-insecure", action="store_true",
                   help="let the key and the prompt go over plain http:// to another machine (STABILITY_BASE_URL or "
                        "OPENAI_BASE_URL on a trusted network); without it such a base URL is refused")


def apply_generate(args: argparse.Namespace, editor: dict[str, Any]) -> None:
    """`generate`'s Editor settings for the hosted generator asked for (or check none is half-asked)."""
    if not args.generator:
        _refuse((("--dry-run", args.dry_run), ("--remote-model", args.remote_model),
                 ("--allow-insecure", args.allow_insecure)), "go with --generator stability or openai")
        return
    _refuse((("--lora", args.lora), ("--embedding", args.embedding), ("--model", args.model != "auto")),
            f"are for local models; --generator {args.generator} runs at the service")
    options: dict[str, Any] = {"dry_run": args.dry_run, "allow_insecure": args.allow_insecure}
    if args.remote_model:
        options["model"] = args.remote_model
    editor["generator"], editor["generator_options"] = args.generator, options


def dry_run_generate(args: argparse.Namespace, params: Any, editor: Any) -> int:
    """Print each request `generate` would send (one per prompt, line or picture); send and write nothing."""
    from ..batch import collect_inputs
    from ..generate.remote import DryRun
    from ..generate_batch import read_prompts
    from ..generation import GenerateRequest
    from ..imageio import read_image

    jobs: list[tuple[str, Any]] = []
    failed = 0
    if args.prompts_file:
        lines, bad = read_prompts(args.prompts_file)
        jobs = [(str(line), lambda line=line: GenerateRequest(line.params(params))) for line in lines]
        for where, reason in bad:
            print(f"{where}: {reason}", file=sys.stderr)
        failed += len(bad)
    elif args.image:
        found, missing = collect_inputs(args.image)
        for path, reason in missing:
            print(f"{path}: {reason}", file=sys.stderr)
        failed += len(missing)
        jobs = [(str(source), lambda source=source: GenerateRequest(params, image=read_image(source)))
                for source, _ in found]
    else:
        jobs = [("prompt", lambda: GenerateRequest(params))]
    for where, request in jobs:
        try:
            editor.generate(request())
        except DryRun as plan:
            print(f"{where}: {plan}")
        except EditAnythingError as exc:
            print(f"{where}: error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def replay_verdict(info: dict[str, Any], diff: int) -> str | None:
    """What `replay` says about an edit made at a hosted service (None for local generators)."""
    if not info.get("remote"):
        return None
    service = info.get("service", info.get("name"))
    if not info.get("honours_seed"):
        return (f"sent again to {service}; not compared: {service} takes no seed, so a remote service "
                "does not reproduce the pixels")
    same = "identical to the original" if diff == 0 else f"differs from the original (max difference {diff})"
    return (f"sent again to {service} with the same seed: {same}; a remote service may not reproduce the pixels "
            "even with the same seed")


def _refuse(flags: tuple[tuple[str, Any], ...], why: str) -> None:
    """One line naming every flag given (its value truthy) that does not fit: "FLAGS WHY"."""
    used = [flag for flag, on in flags if on]
    if used:
        raise InvalidInputError(f"{', '.join(used)} {why}")
