"""The web UI (gradio): `build_app(editor)` makes the app, `serve(app)` starts it on 127.0.0.1.

gradio is imported only when one of these names is used, so `editanything.ui.state` stays light.
"""

from __future__ import annotations

__all__ = ["build_app", "serve"]


def __getattr__(name: str):
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
