"""Pin manifest entries to the tiny files a test puts under their official names.

The real entries pin the released files' sha256 and size, which a tiny random-weight file cannot
match; a test that stands in a tiny model for a released one pins the entry to the tiny file, so
the models layer checks it exactly as it checks the real one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path


def pin_to_files(monkeypatch, root: Path, *names: str) -> None:
    """Replace each named entry's sha256 and size by those of its files under `root` (absent files keep theirs)."""
    from editanything.models import MODELS

    for name in names:
        spec = MODELS[name]
        files = tuple(
            dataclasses.replace(f, sha256=hashlib.sha256((root / f.path).read_bytes()).hexdigest(),
                                size=(root / f.path).stat().st_size)
            if (root / f.path).is_file() else f
            for f in spec.files)
        monkeypatch.setitem(MODELS, name, dataclasses.replace(spec, files=files))
