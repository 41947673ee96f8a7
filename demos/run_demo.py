"""`make demo`: the main jobs on the demo photos with the embedded defaults (no hub weights).

Sketches every photo in demos/ in every style whose weights are present (the classical styles
always; HED after `editanything models download hed`, which `make demo` runs).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "demo"


def run_sketches() -> bool:
    from editanything.batch import sketch_folder
    from editanything.models import find_model
    from editanything.sketch import STYLES

    ok = True
    for style in STYLES:
        if style.startswith("hed") and find_model("hed") is None:
            print(f"sketch {style:10}: skipped, HED weights missing (run: editanything models download hed)")
            continue
        folder = OUT / f"sketch-{style}"
        report = sketch_folder(sorted((ROOT / "demos").glob("*.jpg")), folder, style=style, progress=False)
        print(f"sketch {style:10}: {report.summary()} -> {folder}")
        ok &= report.ok
    return ok


def main() -> int:
    ok = run_sketches()
    print(f"\nall outputs are under {OUT}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
