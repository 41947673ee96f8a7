"""`editanything models list | needs JOB | download NAME | verify [NAME] | path NAME`."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import textwrap
from urllib.parse import urlsplit

from ..errors import InvalidInputError
from ..models import find_model, get_spec, list_models, resolve, verify_model
from ..models.download import download_model
from ..models.manifest import NOT_IN_MANIFEST, HfSource, ModelSpec, WheelSource
from ..models.manifest import with_dependencies
from ..models.store import download_root, size_problem
from ..needs import JOBS, Need, approx_bytes, human, job_needs
from .common import matte_backend

WIDTH = 100  # the tables and notes fit a 100-column terminal; longer entries wrap onto indented lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, download, verify and locate model weights, and say what a job needs")
    msub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = msub.add_parser("list", help="every known model: where it comes from, its revision, size, license, "
                                      "whether its hashes are pinned, and whether it is on disk")
    ls.add_argument("--files", action="store_true", help="also list each file with its sha256 pin")
    n = msub.add_parser(
        "needs", help="the models a kind of job takes on this device, their sizes, and one command to fetch them",
        description="Which models a job takes on this device (a GPU prefers other models than a CPU), best "
                    "first, whether each is on disk, what runs without it, and one download command for "
                    "what is missing. The options are the job's own, as flags: "
                    "`editanything models needs edit --select --prompt`.")
    n.add_argument("job", choices=JOBS, help="the command the job runs")
    n.add_argument("--select", action="store_true", help="select by a phrase (a detector, then a segmenter)")
    n.add_argument("--point", "--box", dest="clicks", action="store_true", help="select by clicks or boxes (a segmenter)")
    n.add_argument("--prompt", action="store_true", help="a prompt is given (else a captioner writes one)")
    what = n.add_mutually_exclusive_group()
    what.add_argument("--remove", action="store_true", help="remove the selection (a remover)")
    what.add_argument("--recolor", action="store_true", help="recolour the selection (no model)")
    what.add_argument("--background", action="store_true", help="regenerate the background from a prompt")
    n.add_argument("--controlnet", action="append", default=[], metavar="KIND", help="add a ControlNet (SD 1.5)")
    n.add_argument("--lcm", action="store_true", help="the LCM sampler (its LCM-LoRA)")
    n.add_argument("--style", help="sketch: the style (default pencil)")
    n.add_argument("--matte", action="store_true", help="edit --background/--recolor, segment: soft edges")
    n.add_argument("--matte-backend", metavar="NAME", help="--matte's backend (default auto)")
    n.add_argument("--device", help="cpu or cuda (default: the device this machine would use)")
    d = msub.add_parser("download", help="fetch a model (and the models it needs) and check its sha256",
                        description="Files go to checkpoints/ in a source checkout, else to $EDITANYTHING_HOME "
                                    "(default ~/.cache/editanything); both are where models are looked up.")
    d.add_argument("names", nargs="+", metavar="NAME")
    v = msub.add_parser("verify", help="check the size and sha256 of models on disk (all present ones by default)")
    v.add_argument("names", nargs="*", metavar="NAME")
    pa = msub.add_parser("path", help="print where a model's files are (or would go, when it is not downloaded)")
    pa.add_argument("name", metavar="NAME")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "needs": _needs, "download": _download, "verify": _verify, "path": _path}[args.action](args)


def _source(spec: ModelSpec) -> tuple[str, str]:
    """The first source of the model's main file, and its revision (hub sources only)."""
    src = spec.files[0].sources[0]
    if isinstance(src, HfSource):
        return f"hf:{src.repo_id}", src.revision[:12] if src.pinned else f"{src.revision} (unpinned)"
    if isinstance(src, WheelSource):
        return f"pypi:{src.requirement}", "-"
    url = urlsplit(src.url)
    return f"{url.netloc}/…/{url.path.rsplit('/', 1)[-1]}" if url.netloc else src.url, "-"


def _pins(spec: ModelSpec) -> str:
    loose = len(spec.unverified)
    return "pinned" if not loose else f"UNVERIFIED {loose}/{len(spec.files)}"


def _status(spec: ModelSpec) -> tuple[str, str]:
    """(missing | present | damaged, and where or what, for the row's second line)."""
    found = find_model(spec.name)
    if found is None:
        return "missing", ""
    bad = [f.path for f in spec.files if f.path in found.files and size_problem(f, found.files[f.path])]
    return ("damaged", f"{bad[0]} has the wrong size") if bad else ("present", f"in {found.root}")


def _wrapped(text: str, indent: str = "    ") -> str:
    return textwrap.fill(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False)


def _note(text: str) -> None:
    print(textwrap.fill(text, WIDTH, subsequent_indent="  ", break_on_hyphens=False), file=sys.stderr)


PINS_FOOTER = ("sha256: `pinned` = every file's sha256 is pinned, checked after each download and by "
               "`editanything models verify`. `UNVERIFIED n/m` = n of the model's m files have no published "
               "sha256 to check them against: they come from the pinned revision and their size is checked where "
               "it is known, but a damaged or substituted file of the same size would not be noticed.")


def _list(args) -> int:
    # Two lines per model, so the table fits 100 columns: the facts, then where it comes from (and where it is).
    print(f"{'name':24} {'kind':12} {'size':>8}  {'license':24} {'sha256':17} status")
    print("    source @ revision")
    for spec in list_models():
        source, revision = _source(spec)
        status, where = _status(spec)
        print(f"{spec.name:24} {spec.kind:12} {spec.size_hint:>8}  {spec.license:24} {_pins(spec):17} {status}")
        origin = source if revision == "-" else f"{source} @ {revision}"
        print(_wrapped(origin + (f" · {where}" if where else "")))
        if args.files:
            for f in spec.files:
                pin = f"sha256 {f.sha256[:16]}…" if f.pinned else "unverified (no pinned sha256)"
                size = f"{f.size:,} bytes" if f.size is not None else "size unknown"
                print(_wrapped(f"{f.path}: {pin}, {size}{', optional' if f.optional else ''}", "      "))
    # on stderr, so stdout holds the table only
    _note(PINS_FOOTER)
    for name, why in NOT_IN_MANIFEST.items():
        _note(f"note: {name} is not listed: {why}")
    _note("note: prompt expanders without a model file: rules (rule-based, no weights, 0 bytes, part of "
          "editanything), openai (hosted: OpenAI's terms and prices, key in OPENAI_API_KEY); "
          "smollm2-135m-instruct and smollm2-360m-instruct above are the local ones")
    return 0


def _device(requested: str | None) -> str:
    if requested:
        return requested
    if importlib.util.find_spec("torch") is None:
        return "cpu"
    from ..models import pick_device

    return pick_device()


def _job_words(args) -> str:
    flags = [f"--{name}" for name in ("select", "clicks", "prompt", "remove", "recolor", "background", "lcm")
             if getattr(args, name)]
    flags = ["--point" if f == "--clicks" else f for f in flags]
    flags += [f"--controlnet {k}" for k in args.controlnet] + ([f"--style {args.style}"] if args.style else [])
    flags += (["--matte"] if args.matte else []) + ([f"--matte-backend {args.matte_backend}"]
                                                    if args.matte_backend else [])
    return " ".join([args.job, *flags])


def _needs(args) -> int:
    backend = matte_backend(args)  # checks the name, and that --matte is there
    matte = (backend or "auto") if args.matte else None
    if matte and (args.job not in ("edit", "segment") or args.job == "edit" and not (args.recolor or args.background)):
        raise InvalidInputError("--matte softens a kept subject's edge: use it with segment, or with edit "
                                "--background or --recolor")
    device = _device(args.device)
    needs = job_needs(args.job, device=device, select=args.select, clicks=args.clicks,
                      prompt=args.prompt or args.background, remove=args.remove, recolor=args.recolor,
                      controlnets=tuple(args.controlnet), lcm=args.lcm, style=args.style, matte=matte)
    print(f"{_job_words(args)} on {device}:")
    if not needs:
        print("  no model: it runs on what is installed")
        return 0
    print(f"{'stage':16} {'model':26} {'size':>8}  {'on disk':8}  without it")
    fetch: list[ModelSpec] = []
    for need in needs:
        chosen = get_spec(need.pick)
        missing = [s for s in with_dependencies(need.pick) if find_model(s.name) is None]
        status = "yes" if need.present else "missing"
        also = [s.name for s in with_dependencies(need.pick) if s.name != need.pick]
        name = need.pick + "".join(f" + {a}" for a in also)
        row = f"{need.stage:16} {name:26} {chosen.size_hint:>8}  {status:8}  {need.without or 'the job stops'}"
        print(textwrap.fill(row, WIDTH, subsequent_indent=" " * 64, break_on_hyphens=False))
        others = [m for m in need.candidates if m != need.pick]
        if others:
            print(_wrapped("alternatives, in the order auto tries them here: " + ", ".join(others), " " * 17))
        fetch += [s for s in missing if s not in fetch]
    if not fetch:
        print("everything it takes is on disk")
        return 0
    total = sum(approx_bytes(s.size_hint) or 0 for s in fetch)
    print(f"missing: {len(fetch)} model{'s' if len(fetch) > 1 else ''}, about {human(total)}; fetch with:")
    # one command, continued with backslashes where it is longer than a line: it still pastes as one
    lines = textwrap.wrap(f"editanything models download {' '.join(s.name for s in fetch)}", WIDTH - 6,
                          break_on_hyphens=False, break_long_words=False)
    print("  " + " \\\n    ".join(lines))
    return 0


def _download(args) -> int:
    for name in args.names:
        get_spec(name)  # unknown names fail before anything is fetched
    for name in args.names:
        for resolved in download_model(name):
            loose = resolved.spec.unverified
            note = f" ({len(loose)} file(s) unverified: no pinned sha256)" if loose else ""
            print(f"{resolved.spec.name}: ready in {resolved.root}{note}")
    return 0


def _verify(args) -> int:
    names = args.names or [s.name for s in list_models() if find_model(s.name)]
    if not names:
        print("no models on disk to verify")
        return 0
    bad = 0
    for name in names:
        for check in verify_model(name):
            if check.status == "mismatch":
                bad += 1
                print(f"{name}: {check.path}: MISMATCH sha256 {check.digest} (expected {check.expected}); "
                      f"delete it and run `editanything models download {name}`", file=sys.stderr)
            elif check.status == "size":
                bad += 1
                print(f"{name}: {check.path}: {check.detail}; delete it and run "
                      f"`editanything models download {name}`", file=sys.stderr)
            elif check.status == "unverified":
                print(f"{name}: {check.path}: UNVERIFIED (no pinned sha256; sha256 is {check.digest})")
            else:
                print(f"{name}: {check.path}: ok")
    return 1 if bad else 0


def _path(args) -> int:
    spec = get_spec(args.name)
    found = find_model(args.name)
    if found is None:
        root = download_root()
        print(root / spec.files[0].path if len(spec.files) == 1 else root / spec.folder)
        print(f"{args.name} is not downloaded yet; its files would go there. "
              f"Fetch them with: editanything models download {args.name}", file=sys.stderr)
        return 1
    resolved = resolve(args.name)
    print(resolved.path() if len(spec.files) == 1 else resolved.folder)
    return 0
