"""The Segmenter protocol and the input checks every backend shares.

A segmenter is shared by every caller (all the UI's users, the CLI, the pipeline), so it holds
only what is safe to share: its weights and caches keyed by image content (SAM's embeddings).
Interactive state belongs to the caller and travels explicitly:

    first = seg.segment(image, Prompt(boxes=[box]))                         # refine_seed=None: afresh
    better = seg.segment(image, Prompt(points=clicks), refine=first.refine_seed)

A single-instance result (clicks, one box, one box + clicks) carries `refine_seed`, a frozen
`RefineSeed(image key, backend name, backend data)`; several boxes carry None. Passed back as
`refine`, the seed starts the new result from the old one (SAM: its low-res logits as the mask
prompt; GrabCut: the old mask as the initial labels), so a bare click after a box corrects that
box's mask. A backend reads the seed through `seed_data`, which refuses a seed made on another
image or by another backend. Two callers interleaving on one image each get exactly what they
would get alone.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import InvalidInputError
from ..types import Detections, Prompt, RefineSeed


@runtime_checkable
class Segmenter(Protocol):
    """Clicks and boxes to masks.

    One instance per box (phrases "box 0", "box 1", …), or one for the clicks ("points"),
    or one for a box refined by clicks ("box 0 + points"). With `multimask` a backend
    may return several candidates per instance, best score first. `refine` is the
    `refine_seed` of a previous result on the same image (see the module docstring): it
    seeds the new result, so a further click corrects it. The returned single-instance
    Detections carry the new seed; nothing about the call is kept in the segmenter.
    """

    name: str

    def segment(self, image: np.ndarray, prompt: Prompt, *, multimask: bool = False,
                refine: RefineSeed | None = None) -> Detections: ...

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


def instance_phrases(prompt: Prompt) -> list[str]:
    """What each instance was prompted by, in output order."""
    if len(prompt.boxes) > 1:
        return [f"box {i}" for i in range(len(prompt.boxes))]
    if prompt.boxes and prompt.points:
        return ["box 0 + points"]
    return ["box 0"] if prompt.boxes else ["points"]


def seed_data(refine: RefineSeed | None, key: bytes, backend: str) -> np.ndarray | None:
    """The backend data of `refine` for an image of content key `key`; None without a seed.

    A seed from another image or another backend would refine the wrong thing: refused.
    """
    if refine is None:
        return None
    if not isinstance(refine, RefineSeed):
        raise InvalidInputError(f"refine takes the refine_seed of a previous result (or None); "
                                f"got {type(refine).__name__}")
    if refine.backend != backend:
        raise InvalidInputError(f"this refine seed was made by {refine.backend}, not {backend}; segment afresh")
    if refine.image != key:
        raise InvalidInputError("this refine seed was made on another image; segment this one afresh")
    return refine.data


def candidate_detections(masks: np.ndarray, scores: np.ndarray, phrases: list[str], multimask: bool,
                         seed: RefineSeed | None) -> Detections:
    """(B, C, H, W) masks and (B, C) scores → one instance per mask, candidates best first."""
    out_masks, out_scores, out_phrases = [], [], []
    for b, phrase in enumerate(phrases):
        order = np.argsort(-scores[b], kind="stable") if multimask else range(scores.shape[1])
        for rank, c in enumerate(order):
            out_masks.append(masks[b, c])
            out_scores.append(float(scores[b, c]))
            out_phrases.append(f"{phrase} #{rank}" if multimask else phrase)
    return Detections.from_masks(np.stack(out_masks), out_scores, out_phrases, seed)
