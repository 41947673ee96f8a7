"""Florence-2 phrase grounding (`<CAPTION_TO_PHRASE_GROUNDING>`) behind the Detector protocol.

Florence-2 writes boxes as text ("a cup<loc_112><loc_340><loc_508><loc_921>", coordinates in 1000
bins); the processor's own post-processing turns that text into pixel boxes and phrases. It gives
no detection score, so each box's score here is the model's mean probability of its four location
tokens (from the beam search's transition scores): a confidence in where the box is, not a
calibrated probability that the phrase is there. Grounding assumes the phrase is in the picture
and nearly always answers with a box, so Florence-2 is a weak judge for the check after a removal
(`--check` / the second look); Grounding DINO's scores are meant for that.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..caption.florence2 import Florence2Model, check_beams
from ..errors import EditAnythingError, InvalidInputError, NothingFound, require
from ..types import Detections, check_rgb
from .grounding_dino import check_thresholds, normalize_caption

TASK = "<CAPTION_TO_PHRASE_GROUNDING>"
_LOC = re.compile(r"<loc_(\d+)>")
_DELETED = ("<s>", "</s>", "<pad>")


class Florence2Detector(Florence2Model):
    """Text → boxes with Florence-2's phrase grounding; boxes best first, clipped, NMS and top-k as the
    Grounding DINO backends do. `box_threshold` applies to the location score (see the module docstring)."""

    extra = "detect"
    doing = "transformers, phrase grounding"

    def __init__(self, model: Any, processor: Any, *, box_threshold: float = 0.0, top_k: int | None = None,
                 nms_iou: float | None = 0.5, max_new_tokens: int = 256, num_beams: int = 3,
                 name: str = "florence-2", source: str = "") -> None:
        self._torch = require("torch", "detect")
        check_thresholds(box_threshold, 0.0, nms_iou, top_k)
        check_beams(max_new_tokens, num_beams)
        self.box_threshold = float(box_threshold)
        self.top_k = top_k
        self.nms_iou = None if nms_iou is None else float(nms_iou)
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self._bind(model, processor, name, source)

    @classmethod
    def from_folder(cls, folder: str | Path, *, text_threshold: float | None = None, **settings: Any):
        """As `Florence2Model.from_folder`; `text_threshold` (a Grounding DINO setting) means nothing here."""
        return super().from_folder(folder, **settings)

    def detect(self, image: np.ndarray, text: str) -> Detections:
        """Boxes (xyxy, pixels, clipped), scores and phrases for `text` ("cup . red car"), best first.

        Raises NothingFound when the model grounds no phrase, or none above `box_threshold`.
        """
        torch = self._torch
        from PIL import Image
        from torchvision.ops import nms

        image = check_rgb(image)
        phrases = normalize_caption(text)[:-2].split(" . ")
        pil = Image.fromarray(image)
        inputs = self.processor(text=TASK + ", ".join(phrases), images=pil, return_tensors="pt")
        limit, length = self.model.config.text_config.max_position_embeddings, inputs["input_ids"].shape[1]
        if length > limit:
            raise InvalidInputError(f"text is too long for Florence-2: with the image it makes {length} tokens, the "
                                    f"model reads at most {limit}; use fewer or shorter phrases")
        inputs = inputs.to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams,
                                      do_sample=False, output_scores=True, return_dict_in_generate=True)
            token_logp = self.model.compute_transition_scores(out.sequences, out.scores, out.get("beam_indices"),
                                                              normalize_logits=False)[0].float()
        sequence = out.sequences[0]
        decoded = self.processor.batch_decode(out.sequences, skip_special_tokens=False)[0]
        found = self.processor.post_process_generation(decoded, task=TASK, image_size=pil.size)[TASK]
        what = ", ".join(phrases)
        if not found["bboxes"]:
            raise NothingFound(f"Florence-2 grounded no '{what}'")
        scores = self._box_scores(sequence, token_logp, found["bboxes"], pil.size)
        h, w = image.shape[:2]
        xyxy = torch.tensor(found["bboxes"], dtype=torch.float32).reshape(-1, 4)
        xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, w)
        xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, h)
        scores_t = torch.tensor(scores, dtype=torch.float32)
        keep = torch.nonzero(scores_t > self.box_threshold).flatten()
        if not len(keep):
            raise NothingFound(f"no '{what}' above box_threshold {self.box_threshold:g}; best score {max(scores):.2f}")
        order = keep[torch.argsort(scores_t[keep], descending=True, stable=True)]
        if self.nms_iou is not None:
            order = keep[nms(xyxy[keep], scores_t[keep], self.nms_iou)]
        if self.top_k is not None:
            order = order[: self.top_k]
        idx = order.tolist()
        return Detections(xyxy[idx].numpy(), scores_t[idx].numpy(), [found["labels"][i].strip() for i in idx])

    def _box_scores(self, sequence: Any, token_logp: Any, boxes: list, size: tuple[int, int]) -> list[float]:
        """Each parsed box's score: exp(mean log-probability) of the four location tokens it was read from.

        The parser reads a box from four consecutive location tokens, in order, and skips those it cannot
        name; each parsed box is matched to the next such window of the generated tokens that dequantizes to it.
        """
        torch = self._torch
        tokens = self.processor.tokenizer.convert_ids_to_tokens(sequence.tolist())
        generated = tokens[len(tokens) - len(token_logp):]  # transition scores cover the generated tokens only
        # The parser deletes these from the text first, so location tokens on either side of them join up.
        kept = [i for i, t in enumerate(generated) if t not in _DELETED]
        bins = [_LOC.fullmatch(generated[i]) for i in kept]
        logp = [token_logp[i].item() for i in kept]
        windows = [p for p in range(len(bins) - 3) if all(bins[p:p + 4])]
        scores, at = [], 0
        for box in boxes:
            for i in range(at, len(windows)):
                p = windows[i]
                quad = torch.tensor([[int(m.group(1)) for m in bins[p:p + 4]]])
                if self.processor.post_processor.dequantize(quad, size=size)[0].tolist() == list(box):
                    scores.append(float(np.exp(np.mean(logp[p:p + 4]))))
                    at = next((j for j in range(i, len(windows)) if windows[j] >= p + 4), len(windows))
                    break
            else:
                raise EditAnythingError(f"Florence-2's parsed box {box} matches none of the location tokens it "
                                        f"generated (a transformers version this backend does not know?)")
        return scores
