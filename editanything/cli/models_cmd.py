"""`editanything models list | download NAME | verify [NAME] | path NAME`."""

from __future__ import annotations

import argparse
import sys

from ..models import find_model, get_spec, list_models, resolve, verify_model
from ..models.download import download_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list, download, verify and locate model weights")
    msub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    msub.add_parser("list", help="every known model, whether it is on disk, its size and license")
    d = msub.add_parser("download", help="fetch a model (and the models it needs) and check its sha256",
                        description="Files go to checkpoints/ in a source checkout, else to $EDITANYTHING_HOME "
                                    "(default ~/.cache/editanything); both are where models are looked up.")
    d.add_argument("names", nargs="+", metavar="NAME")
    v = msub.add_parser("verify", help="check the sha256 of models on disk (all present ones by default)")
    v.add_argument("names", nargs="*", metavar="NAME")
    pa = msub.add_parser("path", help="print where a model's files are")
    pa.add_argument("name", metavar="NAME")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return {"list": _list, "download": _download, "verify": _verify, "path": _path}[args.action](args)


def _list(args) -> int:
    print(f"{'name':26} {'kind':12} {'size':>8}  {'license':24} status")
    for spec in list_models():
        found = find_model(spec.name)
        status = f"present ({found.root})" if found else "missing"
        print(f"{spec.name:26} {spec.kind:12} {spec.size_hint:>8}  {spec.license:24} {status}")
    return 0


def _download(args) -> int:
    for name in args.names:
        get_spec(name)  # unknown names fail before anything is fetched
    for name in args.names:
        for resolved in download_model(name):
            print(f"{resolved.spec.name}: ready in {resolved.root}")
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
            else:
                note = "ok" if check.status == "ok" else "sha256 recorded (no published checksum)"
                print(f"{name}: {check.path}: {note}")
    return 1 if bad else 0


def _path(args) -> int:
    resolved = resolve(args.name)
    print(resolved.path() if len(resolved.spec.files) == 1 else resolved.folder)
    return 0
