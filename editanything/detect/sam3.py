"""SAM 3 (transformers' `Sam3Model`) behind the Detector protocol: a phrase → every instance's box and mask.

One model finds and segments: the returned `Detections` carry masks, so the pipeline skips the
segmenter. Several phrases ("dog . cat") run one text query each on one image encoding (kept in
a small content-hash cache, so asking again about the same photo skips the encoder). The
processor's own `post_process_instance_segmentation` turns the outputs into boxes, scores and masks.
Clicks on SAM 3's result go through its tracker (`--segmenter sam3`, see `segment/sam2_hf.py`).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NothingFound, require
from ..models.transformers_folder import FolderModel
from ..types import Detections, check_rgb, image_key
from .grounding_dino import check_score, check_top_k, normalize_caption


class Sam3Detector(FolderModel):
    """Text → instance masks with SAM 3.

    `threshold`: an instance is kept when its score (detection × presence) exceeds it;
    `mask_threshold`: the probability above which a pixel belongs to the mask; `top_k`: keep the
    best k over all phrases (None = all).
    """

    model_class = "Sam3Model"
    processor_class = "Sam3Processor"
    backend = "sam3-hf"
    default_model = "sam3"
    extra = "sam2"
    family = "SAM 3"
    doing = "text → instance masks"
    what = "SAM 3"

    def __init__(self, model: Any, processor: Any, *, threshold: float = 0.5, mask_threshold: float = 0.5,
                 top_k: int | None = None, name: str = "sam3", source: str = "", cache_size: int = 2) -> None:
        """`model` is a `Sam3Model` on its device, `processor` its `Sam3Processor`."""
        self._torch = require("torch", "sam2")
        check_score("threshold", threshold)
        check_score("mask_threshold", mask_threshold)
        check_top_k(top_k)
        self.threshold, self.mask_threshold, self.top_k = float(threshold), float(mask_threshold), top_k
        self._bind(model, processor, name, source)
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, Any] = OrderedDict()

    @classmethod
    def from_folder(cls, folder: str | Path, *, box_threshold: float | None = None,
                    text_threshold: float | None = None, **settings: Any) -> "Sam3Detector":
        """A `save_pretrained` folder as published in `facebook/sam3`.

        `box_threshold` (the CLI's detector threshold) is SAM 3's instance `threshold`;
        `text_threshold` has no meaning for SAM 3 and is ignored.
        """
        if box_threshold is not None:
            settings.setdefault("threshold", box_threshold)
        return super().from_folder(folder, **settings)

    def detect(self, image: np.ndarray, text: str) -> Detections:
        """Every instance of each phrase: boxes (xyxy, pixels), scores, phrases and masks, best first.

        Raises NothingFound naming the best score when no instance passes `threshold`.
        """
        torch = self._torch
        image = check_rgb(image)
        phrases = [p.strip() for p in normalize_caption(text)[:-2].split(" . ")]
        h, w = image.shape[:2]
        vision = self._vision(image)
        boxes, scores, labels, masks, best = [], [], [], [], 0.0
        for phrase in phrases:
            inputs = self.processor(text=phrase, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                outputs = self.model(vision_embeds=vision, input_ids=inputs["input_ids"],
                                     attention_mask=inputs["attention_mask"])
                found = self.processor.post_process_instance_segmentation(
                    outputs, threshold=self.threshold, mask_threshold=self.mask_threshold, target_sizes=[(h, w)])[0]
                best = max(best, float(_instance_scores(outputs).max()))
            boxes.append(found["boxes"].float().cpu().numpy().reshape(-1, 4))
            scores.append(found["scores"].float().cpu().numpy())
            masks.append(found["masks"].cpu().numpy().astype(bool).reshape(-1, h, w))
            labels += [phrase] * len(found["scores"])
        scores_all = np.concatenate(scores)
        if not len(scores_all):
            raise NothingFound(f"no '{' . '.join(phrases)}' above threshold {self.threshold:g}; best score {best:.2f}")
        xyxy = np.concatenate(boxes)
        xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, w)
        xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, h)
        order = np.argsort(-scores_all, kind="stable")[: self.top_k]
        return Detections(xyxy[order], scores_all[order], [labels[i] for i in order], np.concatenate(masks)[order])

    def _vision(self, image: np.ndarray) -> Any:
        """The image encoder's output for this image, from the cache when it was seen recently."""
        key = image_key(image)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        pixels = self.processor(images=image, return_tensors="pt")["pixel_values"].to(self.device, self.dtype)
        with self._torch.inference_mode():
            vision = self.model.get_vision_features(pixel_values=pixels)
        self._cache[key] = vision
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return vision


def _instance_scores(outputs: Any) -> Any:
    """The per-query scores the post-processing thresholds (detection logits × presence), for the error message."""
    scores = outputs.pred_logits.float().sigmoid()
    if getattr(outputs, "presence_logits", None) is not None:
        scores = scores * outputs.presence_logits.float().sigmoid()
    return scores
