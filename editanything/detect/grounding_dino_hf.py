"""Grounding DINO on transformers (`GroundingDinoForObjectDetection`) behind the Detector protocol.

No groundingdino-py, no separate BERT download, no CUDA extension: the model folder
(`config.json`, `model.safetensors`, processor and tokenizer files, as published in
`IDEA-Research/grounding-dino-tiny` / `-base`) holds everything. The processor's own grounded
post-processing turns logits into boxes and phrases; around it this module adds what the
groundingdino-py backend adds too: clipped pixel boxes, best first, NMS across phrases, top-k
and `NothingFound` instead of an empty result.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError, NothingFound, require
from ..models.transformers_folder import FolderModel
from ..types import Detections, check_rgb
from .grounding_dino import check_thresholds, normalize_caption


class GroundingDinoHFDetector(FolderModel):
    """Text → boxes with transformers' Grounding DINO.

    The thresholds mean what they mean in the groundingdino-py backend: a query is kept when its
    best token score exceeds `box_threshold`; the tokens above `text_threshold` form its phrase.
    Then boxes are sorted by score, overlapping boxes suppressed whatever their phrase (`nms_iou`,
    None = off) and the best `top_k` kept. The processor resizes to its configured 800/1333 px.
    Subclasses for other models of the family set `model_class`, `backend` and `family`.
    """

    model_class = "GroundingDinoForObjectDetection"
    backend = "grounding-dino-hf"
    default_model = "grounding-dino-tiny"
    extra = "detect"
    family = "Grounding DINO"

    def __init__(self, model: Any, processor: Any, *, box_threshold: float = 0.35, text_threshold: float = 0.25,
                 top_k: int | None = None, nms_iou: float | None = 0.5, name: str = "grounding-dino",
                 source: str = "") -> None:
        """`model` is a `model_class` model on its device, `processor` its `GroundingDinoProcessor`."""
        self._torch = require("torch", "detect")
        check_thresholds(box_threshold, text_threshold, nms_iou, top_k)
        self.box_threshold = float(box_threshold)
        self.text_threshold = float(text_threshold)
        self.top_k = top_k
        self.nms_iou = None if nms_iou is None else float(nms_iou)
        self._bind(model, processor, name, source)

    def detect(self, image: np.ndarray, text: str) -> Detections:
        """Boxes (xyxy, pixels, clipped to the image), scores and phrases for `text`, best first.

        Raises NothingFound naming the best score when no box passes `box_threshold`.
        """
        torch = self._torch
        from torchvision.ops import nms

        image = check_rgb(image)
        caption = normalize_caption(text)
        max_len = self.model.config.max_text_len
        inputs = self.processor(images=image, text=caption, return_tensors="pt")
        if inputs["input_ids"].shape[1] > max_len:
            raise InvalidInputError(
                f"text is {inputs['input_ids'].shape[1]} tokens long; {self.family} reads at most {max_len}: "
                "use fewer phrases"
            )
        inputs = inputs.to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        h, w = image.shape[:2]
        with torch.inference_mode():
            outputs = self.model(**inputs)
            outputs.logits, outputs.pred_boxes = outputs.logits.float(), outputs.pred_boxes.float()
            found = self.processor.post_process_grounded_object_detection(
                outputs, inputs["input_ids"], threshold=self.box_threshold, text_threshold=self.text_threshold,
                target_sizes=[(h, w)],
            )[0]
        if not len(found["scores"]):
            best = float(outputs.logits[0].sigmoid().max())
            raise NothingFound(f"no '{caption[:-2]}' above box_threshold {self.box_threshold:g}; best score {best:.2f}")
        scores = found["scores"].cpu()
        xyxy = found["boxes"].cpu().clone()
        xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, w)
        xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, h)
        phrases = [self._clean(p) for p in found["text_labels"]]
        order = torch.argsort(scores, descending=True, stable=True)
        if self.nms_iou is not None:
            order = nms(xyxy, scores, self.nms_iou)  # survivors in descending score order
        if self.top_k is not None:
            order = order[: self.top_k]
        idx = order.tolist()
        return Detections(xyxy[idx].numpy(), scores[idx].numpy(), [phrases[i] for i in idx])

    def _clean(self, phrase: str) -> str:
        """A decoded phrase without the separators and special tokens ([SEP]) that scored above text_threshold."""
        specials = set(self.processor.tokenizer.all_special_tokens)
        return " ".join(w for w in phrase.replace(".", " ").split() if w not in specials)
