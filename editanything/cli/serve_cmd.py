"""`editanything serve [--port 7861] [--model M] [--api-auth user:pass]`: the WebUI's HTTP API alone, no page."""

from __future__ import annotations

import argparse
import os
import sys

from .api_opts import SERVE_BOX_THRESHOLD, add_api_options, api_config, check_port, editor_from, host_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the AUTOMATIC1111 WebUI's HTTP API (/sdapi/v1, /sam) without the page",
                       description="WebUI clients (webuiapi, Krita and GIMP plugins, chat front ends) use editanything "
                                   "as they use the WebUI with --api. Routes and the fields refused are in the README; "
                                   "live docs at /docs. Listens on 127.0.0.1 unless --host/--listen says otherwise.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--listen", action="store_true", help="listen on 0.0.0.0 (the whole network), as the WebUI's --listen")
    p.add_argument("--port", type=int, default=7861, help="port (default 7861)")
    p.add_argument("--segmenter", default="auto", help="as for `ui`")
    p.add_argument("--detector", default="auto", help="as for `ui`")
    p.add_argument("--model", default="auto", help="generator, as for `ui` (POST /sdapi/v1/options switches it)")
    p.add_argument("--max-file-size", default="50mb", metavar="SIZE", help="largest request body (default 50mb)")
    p.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="largest image in pixels (default 40,000,000)")
    p.add_argument("--queue-size", type=int, default=16, metavar="N",
                   help="requests per model kind that may wait; more are turned away (default 16)")
    add_api_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import require

    require("fastapi", "api")
    uvicorn = require("uvicorn", "api")
    from ..server import create_app

    config = api_config(args)  # bad options fail here, before any model is named
    host = host_of(args)
    check_port(host, args.port)  # before any model loads
    if args.box_threshold is None:  # no page selects by text here: the requests' thresholds decide
        args.box_threshold = SERVE_BOX_THRESHOLD
    editor = editor_from(args)
    for stage, text in editor.describe().items():
        print(f"{stage}: {text}", file=sys.stderr)
    print(f"API on http://{host}:{args.port}/sdapi/v1 and /sam; docs at http://{host}:{args.port}/docs",
          file=sys.stderr)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    uvicorn.run(create_app(editor, config), host=host, port=args.port, log_level="warning")
    return 0
