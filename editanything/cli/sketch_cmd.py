"""`editanything sketch INPUT... -o OUTDIR`: photos to pencil / ink / line-art drawings."""

from __future__ import annotations

import argparse
import sys
import time

from ..batch import OUTPUT_FORMATS, BatchReport, default_workers, sketch_folder
from ..errors import InvalidInputError
from ..sketch import STYLES, style_params
from .engine_opts import add_engine_options, engine_from_args, print_engine


def register(sub: argparse._SubParsersAction) -> None:
    styles_help = "; ".join(
        f"{s}: " + (", ".join(f"{k}={v}" for k, v in style_params(s).items()) or "no parameters") for s in STYLES
    )
    p = sub.add_parser(
        "sketch", help="turn photos into pencil, ink or line-art sketches (batch, parallel, resumable)",
        description="Turn photos into sketches. Finished outputs are skipped on re-run; a bad file is "
                    "reported at the end and makes the exit status 1, the rest of the batch still runs.",
        epilog=f"style parameters (set with --param NAME=VALUE): {styles_help}",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive), glob patterns, or URIs "
                   "(s3://, gs://, file://)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder or URI (keeps folder structure)")
    p.add_argument("--style", default="pencil", choices=STYLES, help="drawing style (default: pencil)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a style parameter; repeatable")
    p.add_argument("--workers", type=int, default=None, help=f"processes, or Ray actors (default: CPU count, {default_workers()} here; "
                   "with Ray: the cluster's CPUs)")
    p.add_argument("--max-side", type=int, default=None, metavar="PX", help="shrink photos whose longer side exceeds PX")
    p.add_argument("--format", default="png", choices=OUTPUT_FORMATS, help="output format (default: png)")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, library warnings or log lines")
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
    engine = engine_from_args(args, args.workers)
    report = sketch_folder(
        args.inputs, args.output, style=args.style, params=parse_params(args.param), workers=args.workers,
        max_side=args.max_side, fmt=args.format, overwrite=args.overwrite, progress=not args.quiet, engine=engine,
    )
    print_engine(engine)
    print_report(report, args.output, time.perf_counter() - start)
    return 0 if report.ok else 1


def print_report(report: BatchReport, outdir: str, seconds: float) -> None:
    """The end of a batch: one line per failed file, then the totals."""
    for line in report.failure_lines():
        print(f"failed: {line}", file=sys.stderr)
    rate = len(report.done) / seconds if seconds > 0 and report.done else 0.0
    print(f"{report.summary()} in {seconds:.1f} s ({rate:.1f} img/s); outputs in {outdir}")
