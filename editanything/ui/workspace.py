"""The app's work folder: each session's shown files and each sketch run, removed when they expire.

The folder is a `TemporaryDirectory`, removed when the process exits normally; `serve` turns
SIGTERM into the same clean exit as Ctrl-C, so a stopped server leaves nothing behind. gradio's own
cache (each upload, and a copy of each file a handler returns) goes into such a folder too
(`use_private_gradio_cache`), not into the shared `$TMPDIR/gradio` where it would outlive the server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from .state import Session


class Workspace:
    """Per-session folders and per-run folders under one temporary folder."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="editanything-ui-")
        self.root = Path(self._tmp.name)

    def folder(self, session: Session) -> Path:
        """The session's own folder for the files it shows (removed when the session expires)."""
        if session.key is None:
            session.key = uuid.uuid4().hex
        return self.root / "sessions" / session.key

    def forget(self, session: Session) -> None:
        """gradio's delete callback for an expired session."""
        if session.key is not None:
            shutil.rmtree(self.root / "sessions" / session.key, ignore_errors=True)

    def new_run(self, prefix: str) -> Path:
        """A fresh folder name for one run (not created)."""
        return self.root / f"{prefix}-{uuid.uuid4().hex}"

    def cleanup(self) -> None:
        self._tmp.cleanup()


_gradio_cache: tempfile.TemporaryDirectory | None = None


def use_private_gradio_cache() -> None:
    """Point gradio's file cache at a temporary folder removed when this process exits.

    gradio reads `GRADIO_TEMP_DIR` for the whole process (some modules on import, its upload route,
    its checks that a file lies in the cache), so this is set once per process, before gradio is
    imported; a folder the user named in `GRADIO_TEMP_DIR` is kept as it is (and so are its files).
    """
    global _gradio_cache
    if os.environ.get("GRADIO_TEMP_DIR"):
        return
    _gradio_cache = tempfile.TemporaryDirectory(prefix="editanything-ui-gradio-")
    os.environ["GRADIO_TEMP_DIR"] = _gradio_cache.name


def remove_runs(runs: list[str] | None) -> None:
    """gradio's delete callback for a session's sketch runs."""
    for run in runs or []:
        shutil.rmtree(run, ignore_errors=True)
