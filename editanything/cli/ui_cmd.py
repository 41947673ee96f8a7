"""`editanything ui [--host 127.0.0.1] [--port 7860] [--share]`: the click-to-mask web UI."""

from __future__ import annotations

import argparse
import functools
import os
import sys

from . import fail
from .api_opts import LOOPBACK, add_api_options, api_config, check_port, editor_from, host_of
from .common import MODEL_HELP

__all__ = ["LOOPBACK", "register", "run"]


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
    p.add_argument("--model", default="auto", help=f"generator: {MODEL_HELP}")
    p.add_argument("--max-file-size", default="50mb", metavar="SIZE", help="largest upload, e.g. 50mb (default)")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="largest photo in pixels (default 40,000,000)")
    p.add_argument("--queue-size", type=int, default=16, metavar="N",
                   help="requests that may wait; more are turned away with a message (default 16)")
    p.add_argument("--listen", action="store_true", help="listen on 0.0.0.0 (the whole network), as the WebUI's "
                                                         "--listen")
    p.add_argument("--api", action="store_true", help="also serve the WebUI's HTTP API (/sdapi/v1, /sam, docs at "
                                                      "/docs) on the same port, as the WebUI's --api")
    add_api_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ..ui.app import DEFAULT_MAX_PIXELS, build_app, serve
    from ..ui.locks import ModelLocks

    api_options = [o for o in ("api_auth", "api_max_images", "styles_file") if getattr(args, o) is not None]
    if api_options and not args.api:
        return fail(f"--{api_options[0].replace('_', '-')} is an option of the API: add --api")
    config = api_config(args) if args.api else None
    host = host_of(args, "app")
    check_port(host, args.port)  # before any model loads
    if args.share:
        print("warning: --share makes a public link; anyone who has it can use this app", file=sys.stderr)
    editor = editor_from(args)
    locks = ModelLocks(editor)
    demo = build_app(editor, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, queue_size=args.queue_size,
                     locks=locks)
    for stage, text in editor.describe().items():
        print(f"{stage}: {text}", file=sys.stderr)
    routes = None
    if config is not None:
        from ..server import add_api

        routes = functools.partial(add_api, editor=editor, config=config, locks=locks)
        print(f"API on /sdapi/v1 and /sam (docs at /docs) on port {args.port}", file=sys.stderr)
    serve(demo, host=host, port=args.port, share=args.share, max_file_size=args.max_file_size, add_routes=routes)
    return 0

