"""Pin manifest entries to the tiny files a test puts under their official names.

The real entries pin the released files' sha256 and size, which a tiny random-weight file cannot
match; a test that stands in a tiny model for a released one pins the entry to the tiny file, so
the models layer checks it exactly as it checks the real one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


def pin_to_files(monkeypatch, root: Path, *names: str) -> None:
    """Replace each named entry's sha256 and size by those of its files under `root` (absent files keep theirs)."""
    from editanything.models import MODELS
    from editanything.models.store import sha256_file  # remembered by size and mtime: fixtures re-pin often

    for name in names:
        spec = MODELS[name]
        files = tuple(
            dataclasses.replace(f, sha256=sha256_file(root / f.path), size=(root / f.path).stat().st_size)
            if (root / f.path).is_file() else f
            for f in spec.files)
        monkeypatch.setitem(MODELS, name, dataclasses.replace(spec, files=files))
