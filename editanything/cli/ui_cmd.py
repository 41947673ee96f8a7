"""`editanything ui [--host 127.0.0.1] [--port 7860] [--share]`: the click-to-mask web UI."""

from __future__ import annotations

import argparse
import os
import sys

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="start the web UI: click to select, then replace, remove, recolor; sketch photos",
                       description="Starts a local web app over the same API as the other commands. It listens on "
                                   "127.0.0.1 only, unless --host says otherwise.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; "
                                                       "0.0.0.0 lets the whole network in)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (anyone with it can use "
                                                        "the app and this machine's models)")
    p.add_argument("--segmenter", default="auto", help="edgetam, sam2.1-hiera-tiny/-small/-base-plus/-large, sam-vit-b/-l/-h, sam3, grabcut, or auto (on a CPU the fastest on disk, on a GPU the best)")
    p.add_argument("--detector", default="auto", help="grounding-dino-tiny/-base, groundingdino-swint-ogc/-swinb, sam3, or auto (the first of these on disk)")
    p.add_argument("--model", default="auto", help="generator: sd15-inpainting, sd2-inpainting, classical, a diffusers "
                                                   "folder or a .safetensors file; auto = SD 1.5 if present")
    p.add_argument("--max-file-size", default="50mb", metavar="SIZE", help="largest upload, e.g. 50mb (default)")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="largest photo in pixels (default 40,000,000)")
    p.add_argument("--queue-size", type=int, default=16, metavar="N",
                   help="requests that may wait; more are turned away with a message (default 16)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ..models import find_model
    from ..pipeline import Editor
    from ..ui.app import DEFAULT_MAX_PIXELS, build_app, serve

    if args.host not in LOOPBACK:
        print(f"warning: listening on {args.host}: other machines can reach this app", file=sys.stderr)
    if args.share:
        print("warning: --share makes a public link; anyone who has it can use this app", file=sys.stderr)
    editor = Editor(detector=args.detector, segmenter=args.segmenter, generator=args.model,
                    captioner="auto" if find_model("blip2-opt-2.7b") is not None else None)
    demo = build_app(editor, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, queue_size=args.queue_size)
    for stage, text in editor.describe().items():
        print(f"{stage}: {text}", file=sys.stderr)
    serve(demo, host=args.host, port=args.port, share=args.share, max_file_size=args.max_file_size)
    return 0
