"""A batch job that writes down what a worker process would draw: the libraries' loading-bar switches."""

import os
from pathlib import Path


def bar_switches(source: Path, output: Path) -> None:
    """`output` holds TQDM_DISABLE and HF_HUB_DISABLE_PROGRESS_BARS as this process sees them."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(" ".join(os.environ.get(v, "-") for v in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")))
