"""Florence-2 (transformers' `Florence2ForConditionalGeneration`) behind the Captioner protocol.

Florence-2 is a 0.23 B (base) image-to-text model steered by task tokens; captions come from
`<CAPTION>` (one sentence, the default), `<DETAILED_CAPTION>` or `<MORE_DETAILED_CAPTION>`. It
answers no free questions: a `prompt` must be one of those task tokens. Decoding is deterministic
(beam search, no sampling), as the model card runs it. A region is captioned on the same crop as
BLIP-2's (`regions.py`: the mask's padded box, outside-mask pixels set to the processor's mean colour).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError, require
from ..models.transformers_folder import FolderModel
from .regions import RegionCaptioner

CAPTION_TASKS = ("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>")
MODEL_CLASS = "Florence2ForConditionalGeneration"


class Florence2Model(FolderModel):
    """What the Florence-2 captioner and detector share: the model class and the manifest's backend. A
    subclass names its `extra` (the pip extra a missing library points to) and `doing` (what `describe`
    says it does)."""

    model_class = MODEL_CLASS
    backend = "florence2"
    default_model = "florence-2-base"
    family = "Florence-2"
    what = "a Florence-2 model"


def check_beams(max_new_tokens: int, num_beams: int) -> None:
    for what, value in (("max_new_tokens", max_new_tokens), ("num_beams", num_beams)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{what} must be an int >= 1; got {value!r}")


class Florence2Captioner(Florence2Model, RegionCaptioner):
    """Captions with Florence-2; see the module docstring."""

    extra = "caption"
    doing = "transformers"

    def __init__(self, model: Any, processor: Any, *, task: str = "<CAPTION>", max_new_tokens: int = 64,
                 num_beams: int = 3, padding: float = 0.1, batch_size: int = 8, name: str = "florence-2",
                 source: str = "") -> None:
        """`model` is a Florence-2 model on its device, `processor` its `Florence2Processor`."""
        self._torch = require("torch", "caption")
        if task not in CAPTION_TASKS:
            raise InvalidInputError(f"task must be one of {', '.join(CAPTION_TASKS)}; got {task!r}")
        check_beams(max_new_tokens, num_beams)
        self._regions(processor, padding, batch_size)
        self._bind(model, processor, name, source)
        self.task = task
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams

    def _generate(self, images: list[np.ndarray], prompt: str | None) -> list[str]:
        from PIL import Image

        task = self.task if prompt is None else prompt
        if task not in CAPTION_TASKS:
            raise InvalidInputError(f"Florence-2 answers no questions; its prompt is one of "
                                    f"{', '.join(CAPTION_TASKS)}; got {prompt!r}; questions need BLIP-2 "
                                    f"(editanything models download blip2-opt-2.7b)")
        pil = [Image.fromarray(im) for im in images]
        inputs = self.processor(text=[task] * len(pil), images=pil, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with self._torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, num_beams=self.num_beams,
                                      do_sample=False)
        texts = self.processor.batch_decode(out, skip_special_tokens=False)
        return [self.processor.post_process_generation(t, task=task, image_size=im.size)[task]
                for t, im in zip(texts, pil)]
