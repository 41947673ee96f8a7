"""What a generator returns: the images, and everything needed to make each of them again.

A generator keeps nothing of a call on itself: the seeds, the CPU threads and the model's add-ons
a call used come back with its images, so one generator can serve many callers at once and the
recipe is built from what actually ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import BadOutput, UnchangedOutput


@dataclass(frozen=True)
class Generated:
    """images: RGB uint8, batch_size × batch_count, each the size of the input it was given.
    seeds:   the seed of each image (image i replays alone from seeds[i]); empty where the generator
             draws no noise (OpenCV's fill, the removers, recolor) or the service takes no seed (OpenAI).
    threads: torch's CPU threads the call ran with (the last bits of a CPU result depend on them);
             None where no torch model ran.
    model:   what the recipe records of the model: name, files and their sha256, LoRAs, embeddings,
             ControlNets, the LCM switch and its file, a hosted service's requests.
    """

    images: list[np.ndarray]
    seeds: list[int] = field(default_factory=list)
    threads: int | None = None
    model: dict[str, Any] = field(default_factory=dict)

    def recipe_model(self) -> dict[str, Any]:
        """`model` with the threads it ran with, as the recipe's `models.generator` (replay reads them back)."""
        return {**self.model, "threads": self.threads} if self.threads is not None else dict(self.model)


def finite(values: np.ndarray, who: str) -> np.ndarray:
    """`values` unless a NaN or inf is in it: cast to uint8 it would be a black image reported as done."""
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
        raise BadOutput(f"{who} produced non-finite numbers (NaN or inf) instead of an image; check the prompt "
                        "weights, LoRA scales and CFG, or run in full precision")
    return values


def changed(source: np.ndarray, images: list[np.ndarray], who: str) -> list[np.ndarray]:
    """`images` unless one of them is `source` itself, pixel for pixel: a fill that painted nothing is no result."""
    for i, image in enumerate(images):
        if np.array_equal(image, source):
            raise UnchangedOutput(f"{who} returned its input unchanged (image {i + 1} of {len(images)}): "
                                  "nothing was painted")
    return images
