"""The HTTP API that AUTOMATIC1111 WebUI clients speak: `/sdapi/v1/*` and the Segment Anything extension's `/sam/*`.

    app = create_app(Editor(), ServerConfig(auth={"me": "secret"}))   # `editanything serve`
    add_api(gradio_app, editor, config, locks=locks)                   # `editanything ui --api`

A thin shell over the same `Editor` the CLI and the UI use: requests are checked field by field
(a field we cannot honour is refused by name, never ignored), turned into an `EditRequest`, run
one at a time per model kind, and answered in the WebUI's shapes. fastapi is imported only here.
"""

from __future__ import annotations

from .config import ServerConfig, parse_auth

__all__ = ["ServerConfig", "add_api", "create_app", "parse_auth"]


def __getattr__(name: str):
    if name in ("add_api", "create_app"):
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
