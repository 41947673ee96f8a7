"""A models folder of a benchmark's own: random weights under names of their own, named by a manifest.

The built-in entries pin the released files' sha256 and size, which random weights cannot match (the
store refuses such a file under an official name). So a benchmark saves its weights under its own
names and registers them through $EDITANYTHING_MANIFEST, as a user adds a fine-tune: the models layer
then finds, checks and loads them exactly as it does downloaded files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MANIFEST = "bench-models.json"


def write_manifest(root: Path, models: dict[str, dict[str, Any]]) -> Path:
    """`root/bench-models.json` naming, for each model, the files at its `paths` (files or folders under
    `root`) with their size and sha256, its `loader` and what it `requires`."""
    from editanything.models.store import sha256_file

    entries = []
    for name, model in models.items():
        files = []
        for rel in model["paths"]:
            path = root / rel
            found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            files += [{"path": f.relative_to(root).as_posix(), "size": f.stat().st_size, "sha256": sha256_file(f),
                       "sources": []} for f in found]  # no source: these are built, never downloaded
        entries.append({"name": name, "license": "random weights (benchmark)", "loader": model["loader"],
                        "requires": model.get("requires", []), "files": files})
    manifest = root / MANIFEST
    manifest.write_text(json.dumps(entries, indent=1), encoding="utf-8")
    return manifest


def own_models_env(root: Path) -> dict[str, str]:
    """The environment that makes the models layer see the models of `root`'s manifest (and only them
    among model folders)."""
    return {"EDITANYTHING_CHECKPOINTS": str(root), "EDITANYTHING_MANIFEST": str(root / MANIFEST),
            "HF_HUB_OFFLINE": "1"}


def use_own_models(root: Path) -> None:
    """Point this process's models layer at `root` (see `own_models_env`)."""
    os.environ.update(own_models_env(root))
