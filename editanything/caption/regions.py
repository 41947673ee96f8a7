"""Region captions shared by every captioner: the crop a mask selects, and the captioning of crops in batches.

A region is captioned on a crop around its mask (the mask's box widened by `padding`, clamped to
the image), with every pixel outside the mask set to the image processor's mean colour. That
colour normalises to exactly 0, the least informative input the vision encoder can get, so the
caption describes the selected object; blurring the background instead would keep its colours and
shapes, and BLIP-2 readily names the surroundings ("a kite in the blue sky").
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import masks as mask_ops
from ..errors import InvalidInputError
from ..types import check_mask, check_rgb


def region_box(mask: np.ndarray, padding: float = 0.1) -> tuple[int, int, int, int]:
    """The crop box (x0, y0, x1, y1) around `mask`: its tight box widened on each side by
    `padding` × the box's longer side (rounded), clamped to the image."""
    check_padding(padding)
    box = mask_ops.bbox(mask)
    if box is None:
        raise InvalidInputError("the mask is empty: there is no region to caption")
    pad = int(round(padding * max(box[2] - box[0], box[3] - box[1])))
    return mask_ops.crop_around(mask, pad)


def region_crop(image: np.ndarray, mask: np.ndarray, padding: float = 0.1,
                fill: Sequence[int] = (128, 128, 128)) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The crop of `image` around `mask` (see `region_box`) with outside-mask pixels set to `fill`, and its box."""
    image = check_rgb(image)
    mask = check_mask(mask, image.shape)
    x0, y0, x1, y1 = region_box(mask, padding)
    crop = image[y0:y1, x0:x1].copy()
    crop[~mask[y0:y1, x0:x1]] = np.asarray(fill, np.uint8)
    return crop, (x0, y0, x1, y1)


def check_padding(padding: float) -> None:
    if isinstance(padding, bool) or not isinstance(padding, (int, float)) or not 0 <= padding <= 10:
        raise InvalidInputError(f"padding must be a number in [0, 10] (a fraction of the region's size); "
                                f"got {padding!r}")


class RegionCaptioner:
    """`caption` and `caption_regions` over a subclass's `_generate(images, prompt) -> captions`; the
    subclass sets `padding`, `fill` (the processor's mean colour) and `batch_size`."""

    padding: float
    fill: tuple[int, ...]
    batch_size: int

    def _regions(self, processor: Any, padding: float, batch_size: int) -> None:
        """Check and set the region settings; crops are filled outside the region with the processor's mean
        colour, which normalises to zero (the model sees nothing there)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be an int >= 1; got {batch_size!r}")
        check_padding(padding)
        self.padding, self.batch_size = float(padding), batch_size
        mean = getattr(processor.image_processor, "image_mean", None) or (0.5, 0.5, 0.5)
        self.fill = tuple(int(round(255 * m)) for m in mean)

    def _generate(self, images: list[np.ndarray], prompt: str | None) -> list[str]:
        raise NotImplementedError

    def caption(self, image: np.ndarray, mask: np.ndarray | None = None, prompt: str | None = None) -> str:
        """A caption of the whole image, or of the region `mask` selects; with `prompt`, its answer."""
        image = check_rgb(image)
        if mask is not None:
            image, _ = region_crop(image, mask, self.padding, self.fill)
        return self._generate([image], prompt)[0]

    def caption_regions(self, image: np.ndarray, masks: Sequence[np.ndarray] | np.ndarray,
                        prompt: str | None = None) -> list[str]:
        """One caption per mask (a list of (H, W) masks or an (N, H, W) array), generated in batches."""
        image = check_rgb(image)
        crops = [region_crop(image, m, self.padding, self.fill)[0] for m in masks]
        captions: list[str] = []
        for start in range(0, len(crops), self.batch_size):
            captions += self._generate(crops[start:start + self.batch_size], prompt)
        return captions
