"""The options of the WebUI HTTP API that `serve` and `ui --api` share, and the Editor both build."""

from __future__ import annotations

import argparse
import errno
import socket
import sys

from ..errors import InvalidInputError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
SERVE_BOX_THRESHOLD = 0.05  # serve's detector keeps boxes from here; each /sam request filters at its own


def add_api_options(p: argparse.ArgumentParser) -> None:
    """The options `serve` and `ui --api` share."""
    p.add_argument("--api-auth", metavar="USER:PASS[,USER2:PASS2]",
                   help="require HTTP basic auth for the API (as the WebUI's --api-auth); without it anyone "
                        "who can reach the port can use the API")
    p.add_argument("--api-max-images", type=int, default=None, metavar="N",
                   help="most images one request may ask for (batch_size × n_iter; default 16)")
    p.add_argument("--lora", action="append", default=[], metavar="PATH:SCALE",
                   help="load a LoRA into the generator, as for `edit` (GET /sdapi/v1/loras lists it)")
    p.add_argument("--embedding", action="append", default=[], metavar="PATH:TOKEN",
                   help="a textual inversion, as for `edit` (GET /sdapi/v1/embeddings lists it)")
    p.add_argument("--styles-file", metavar="CSV|JSON",
                   help="saved styles that a request's `styles` may name (the WebUI's styles.csv, as for `edit`)")
    p.add_argument("--box-threshold", type=float, default=None, metavar="T",
                   help="the text detector's box threshold, the lowest a /sam request's may be (default: for "
                        f"`serve`, {SERVE_BOX_THRESHOLD}, so that clients' own thresholds (webuiapi's 0.3) are "
                        "honoured; for `ui`, the detector's own, 0.35, which its text selection uses)")


def api_config(args: argparse.Namespace, max_body: int | None = None):
    from ..server import ServerConfig, parse_auth
    from ..server.config import DEFAULT_MAX_IMAGES, DEFAULT_MAX_PIXELS

    from ..generate.prompts import load_styles

    styles = load_styles(args.styles_file) if args.styles_file else {}
    return ServerConfig(auth=parse_auth(args.api_auth), styles=styles, max_body=max_body or _bytes(args.max_file_size),
                        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
                        max_images=args.api_max_images or DEFAULT_MAX_IMAGES, queue_size=args.queue_size)


def editor_from(args: argparse.Namespace):
    from ..pipeline import Editor

    from .edit_cmd import _captioner_if_present, _generator_options

    options = {"box_threshold": args.box_threshold} if args.box_threshold is not None else None
    return Editor(detector=args.detector, segmenter=args.segmenter, generator=args.model, detector_options=options,
                  generator_options=_generator_options(args) or None,
                  captioner=_captioner_if_present())


def host_of(args: argparse.Namespace, what: str = "server") -> str:
    """--listen's 0.0.0.0, else --host; warns when other machines can reach it."""
    host = "0.0.0.0" if args.listen else args.host
    if host not in LOOPBACK:
        print(f"warning: listening on {host}: other machines can reach this {what}", file=sys.stderr)
    return host


def check_port(host: str, port: int) -> None:
    """InvalidInputError when the server could not listen on host:port (taken, or not this machine's address)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise InvalidInputError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # as uvicorn binds: a port left in TIME_WAIT by the last run counts as free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InvalidInputError(f"port {port} is in use; pass --port N") from None
            raise InvalidInputError(f"cannot listen on {host}:{port} ({exc.strerror}); pass another --host or "
                                    "--port") from None


def _bytes(text: str) -> int:
    units = {"kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3, "b": 1}
    value = text.strip().lower()
    for unit, factor in units.items():
        if value.endswith(unit) and value[:-len(unit)].strip().isdigit():
            return int(value[:-len(unit)]) * factor
    if value.isdigit():
        return int(value)
    raise InvalidInputError(f"--max-file-size expects a size such as 50mb; got {text!r}")
