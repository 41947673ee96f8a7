"""The Segmenter protocol and the input checks every backend shares."""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import InvalidInputError
from ..types import Detections, Prompt


@runtime_checkable
class Segmenter(Protocol):
    """Clicks and boxes to masks.

    One instance per box (phrases "box 0", "box 1", …), or one for the clicks ("points"),
    or one for a box refined by clicks ("box 0 + points"). With `multimask` a backend
    may return several candidates per instance, best score first. With `refine` the
    previous result on the same image seeds the new one, so a further click corrects it.
    """

    name: str

    def segment(self, image: np.ndarray, prompt: Prompt, *, multimask: bool = False,
                refine: bool = False) -> Detections: ...

    def describe(self) -> str: ...

    def prepare(self, image: np.ndarray) -> None:
        """Do the per-image work ahead of the first prompt (SAM: the image embedding)."""


def check_prompt(prompt: Prompt, image_shape: tuple[int, ...]) -> None:
    """Reject prompts a segmenter cannot act on, with the reason."""
    if not isinstance(prompt, Prompt):
        raise InvalidInputError(f"prompt must be an editanything.Prompt; got {type(prompt).__name__}")
    if not prompt.points and not prompt.boxes:
        what = "text goes through a detector first" if prompt.text else "the prompt is empty"
        raise InvalidInputError(f"a segmenter needs clicks or boxes; {what}")
    if prompt.points and len(prompt.boxes) > 1:
        raise InvalidInputError(
            f"clicks can refine one box, not {len(prompt.boxes)}: segment the boxes first, then click on one"
        )
    prompt.check_inside(image_shape)


def image_key(image: np.ndarray) -> bytes:
    """A content hash of the whole image (any changed pixel gives a new key).

    sha256 over every byte: about 0.6 ms per megapixel here (SHA extensions), a few
    percent of one SAM decoder call, and no stale embedding after a small edit, which
    hashing a subsampled view would risk.
    """
    h = hashlib.sha256(np.ascontiguousarray(image).data)
    h.update(repr((image.shape, image.dtype.str)).encode())
    return h.digest()


def instance_phrases(prompt: Prompt) -> list[str]:
    """What each instance was prompted by, in output order."""
    if len(prompt.boxes) > 1:
        return [f"box {i}" for i in range(len(prompt.boxes))]
    if prompt.boxes and prompt.points:
        return ["box 0 + points"]
    return ["box 0"] if prompt.boxes else ["points"]
