"""`/sam/*` as sd-webui-segment-anything defines it, answered by the Editor's segmenter and detector.

Unlike that extension, `input_image` is only ever image data (base64 or a data URI), never a
server-side path, and `dilate-mask` answers `blended_image`, the key clients read. Whatever
`sam_model_name` or `dino_model_name` a client sends (webuiapi sends `sam_vit_h_4b8939.pth` unless
told), the server's own segmenter and detector answer, and the answer's `msg` names them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from .. import masks as mask_ops
from ..errors import InvalidInputError, NothingFound
from ..overlay import PALETTE, overlay, tint
from ..types import Detections, Prompt
from .images import png_b64, read_b64_image, read_b64_mask, rgba_png_b64

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamPredictRequest(_Strict):
    sam_model_name: Optional[str] = None
    input_image: str
    sam_positive_points: list[list[float]] = []
    sam_negative_points: list[list[float]] = []
    dino_enabled: bool = False
    dino_model_name: Optional[str] = None
    dino_text_prompt: Optional[str] = None
    dino_box_threshold: float = 0.3
    dino_preview_checkbox: bool = False
    dino_preview_boxes_selection: Optional[list[int]] = None


class DinoPredictRequest(_Strict):
    input_image: str
    dino_model_name: Optional[str] = None
    text_prompt: str
    box_threshold: float = 0.3


class DilateMaskRequest(_Strict):
    input_image: str
    mask: str
    dilate_amount: int = 10


def model_name(backend: Any) -> str:
    """What a backend is called: its checkpoint's file name when it is one file (as the extension lists SAM's
    .pth files), else its own name (a transformers folder, a weight-free backend)."""
    from ..models import model_files

    name = getattr(backend, "name", type(backend).__name__)
    files = [Path(f["path"]).name for f in model_files(name) if "path" in f]
    return files[0] if len(files) == 1 else name


def _answered_by(field: str, asked: str | None, backend: Any) -> str:
    ours = model_name(backend)
    return ours if asked in (None, "", ours) else f"{ours} (asked for {field} {asked!r}: this server has {ours})"


def router(api) -> APIRouter:
    r = APIRouter(prefix="/sam", tags=["segment anything"], route_class=api.route_class)

    @r.get("/heartbeat")
    def heartbeat() -> dict:
        return {"msg": "Success!"}

    @r.get("/sam-model")
    def sam_model() -> list[str]:
        with api.slots.run("selection"):
            return [model_name(api.editor.segmenter)]

    @r.post("/sam-predict")
    def sam_predict(req: SamPredictRequest) -> dict:
        """Clicks (or Grounding DINO boxes from `dino_text_prompt`) to masks: up to three candidates,
        each with the photo blended with it and the photo cut out by it (transparent elsewhere)."""
        image = read_b64_image(req.input_image, "input_image", api.config.max_pixels)
        points = ([(x, y, 1) for x, y in _pairs(req.sam_positive_points, "sam_positive_points")]
                  + [(x, y, 0) for x, y in _pairs(req.sam_negative_points, "sam_negative_points")])
        with api.slots.run("selection"):
            segmenter = api.editor.segmenter
            answered = _answered_by("sam_model_name", req.sam_model_name, segmenter)
            boxes: list[tuple[float, ...]] = []
            if req.dino_enabled:
                found = _detect(api, image, req.dino_text_prompt, req.dino_box_threshold)
                answered += f" on the boxes of {_answered_by('dino_model_name', req.dino_model_name, api.editor.detector)}"
                if req.dino_preview_checkbox and req.dino_preview_boxes_selection is not None:
                    found = found.keep(indices=req.dino_preview_boxes_selection)
                boxes = [tuple(b) for b in found.xyxy.tolist()]
            if not points and not boxes:
                raise InvalidInputError("sam-predict needs sam_positive_points, or dino_enabled with a "
                                        "dino_text_prompt")
            candidates = _candidates(segmenter, image, points, boxes)
        return {"msg": f"Mask prediction successful: {len(candidates)} candidates by {answered}",
                "blended_images": [png_b64(tint(image, m, PALETTE[2])) for m in candidates],
                "masks": [png_b64(np.where(m, 255, 0).astype(np.uint8)) for m in candidates],
                "masked_images": [rgba_png_b64(image, m) for m in candidates]}

    @r.post("/dino-predict")
    def dino_predict(req: DinoPredictRequest) -> dict:
        """Grounding DINO's boxes for `text_prompt`, drawn over the photo (a preview: pick boxes by index)."""
        image = read_b64_image(req.input_image, "input_image", api.config.max_pixels)
        with api.slots.run("selection"):
            found = _detect(api, image, req.text_prompt, req.box_threshold)
            answered = _answered_by("dino_model_name", req.dino_model_name, api.editor.detector)
        return {"msg": f"{len(found)} boxes found by {answered}",
                "image_with_box": png_b64(overlay(image, found, opacity=0.0))}

    @r.post("/dilate-mask")
    def dilate_mask(req: DilateMaskRequest) -> dict:
        """The mask grown by `dilate_amount` pixels, with the blended and cut-out photo."""
        image = read_b64_image(req.input_image, "input_image", api.config.max_pixels)
        mask = read_b64_mask(req.mask, "mask", api.config.max_pixels)
        if mask.shape != image.shape[:2]:
            raise InvalidInputError(f"mask is {mask.shape[1]}x{mask.shape[0]}, input_image "
                                    f"{image.shape[1]}x{image.shape[0]}; they must match")
        if not 0 <= req.dilate_amount <= 100:
            raise InvalidInputError(f"dilate_amount must be 0..100 pixels; got {req.dilate_amount}")
        grown = mask_ops.grow(mask, req.dilate_amount)
        return {"blended_image": png_b64(tint(image, grown, PALETTE[2])),
                "mask": png_b64(np.where(grown, 255, 0).astype(np.uint8)),
                "masked_image": rgba_png_b64(image, grown)}

    return r


def _pairs(points: list[list[float]], field: str) -> list[tuple[float, float]]:
    bad = next((p for p in points if len(p) != 2), None)
    if bad is not None:
        raise InvalidInputError(f"{field}: each point is [x, y]; got {bad}")
    return [(p[0], p[1]) for p in points]


def _detect(api, image: np.ndarray, text: str | None, threshold: float) -> Detections:
    """The detector's boxes for `text` scoring above `threshold`, which may not be below the detector's own."""
    if not text or not text.strip():
        raise InvalidInputError("dino_text_prompt (text_prompt) is empty: say what to find, e.g. 'dog . cat'")
    if not 0 <= threshold <= 1:
        raise InvalidInputError(f"box_threshold must be in [0, 1]; got {threshold}")
    detector = api.editor.detector
    own = getattr(detector, "box_threshold", None)
    if own is not None and threshold < own:
        raise InvalidInputError(f"box_threshold {threshold:g} is below this server's detector threshold {own:g}; "
                                f"send at least {own:g} (or start the server with a lower --box-threshold)")
    found = detector.detect(image, text)
    found = found[found.scores > threshold]  # "above", as the detector's own threshold
    if not len(found):
        raise NothingFound(f"no {text!r} scored above box_threshold {threshold:g}")
    return found


def _candidates(segmenter, image: np.ndarray, points: list, boxes: list) -> list[np.ndarray]:
    """Up to three candidate masks, best first: the union over boxes of each box's candidate of that rank."""
    if len(boxes) > 1 and points:
        raise InvalidInputError("clicks refine one box; with several DINO boxes send no points "
                                "(or pick one box with dino_preview_boxes_selection)")
    prompt = Prompt(points=points, boxes=boxes)
    found = segmenter.segment(image, prompt, multimask=True)
    if found.masks is None or not len(found):
        raise NothingFound("the segmenter returned no mask; click inside the object")
    ranks: dict[int, np.ndarray] = {}
    for phrase, m in zip(found.phrases, found.masks):
        rank = int(phrase.rsplit("#", 1)[1]) if "#" in phrase else 0
        ranks[rank] = ranks[rank] | m if rank in ranks else m.copy()
    return [ranks[k] for k in sorted(ranks)][:3]
