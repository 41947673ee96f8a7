"""SAM 2.1 (and SAM 3's tracker, the same interface) on transformers behind the Segmenter protocol.

The stock model and processor do the work: `get_image_embeddings` once per image, then the
prompt encoder and mask decoder per click (`model(image_embeddings=…)`), and the processor's
own point scaling and mask post-processing. As in `sam.py`, the image embeddings are kept in a
bounded LRU keyed by the image's content hash, so a further click, or a switch back to a
recent image, costs only the decoder.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, require
from ..models import get_spec, pick_device, pick_dtype, resolve
from ..models.transformers_folder import load_pretrained
from ..types import Detections, Prompt, RefineSeed, check_rgb, image_key
from .base import candidate_detections, check_prompt, instance_phrases, seed_data

BACKEND = "sam2-hf"  # the manifest's loader["backend"] for every model this module loads


@dataclass
class _Embedding:
    features: list  # the model's multi-level image embeddings (torch tensors, batch 1)
    original_size: tuple[int, int]


# Python packages a model class needs beyond transformers: EdgeTAM's encoder is a timm RepViT.
_NEEDS = {"EdgeTamModel": "timm"}


class Sam2Segmenter:
    """Clicks and boxes → masks with a SAM 2-family model from transformers; see the module docstring."""

    OPTIONS = ("device", "cache_size")
    """The settings `from_model` takes (what `get_segmenter(name, **options)` may pass)."""

    def __init__(self, model: Any, processor: Any, *, name: str = "sam2", source: str = "", cache_size: int = 8) -> None:
        """`model` is a `Sam2Model` (or `EdgeTamModel`, `Sam3TrackerModel`) on its device, `processor` its processor."""
        self._torch = require("torch", "sam2")
        if not isinstance(cache_size, int) or cache_size < 1:
            raise InvalidInputError(f"cache_size must be an int >= 1; got {cache_size!r}")
        self.model = model.eval()
        decoder = getattr(model, "mask_decoder", None)
        if next(model.parameters()).device.type == "cpu" and hasattr(decoder, "upscale_conv1"):
            # The decoder hands its transposed convolutions a channels-last view (a transpose of the
            # token matrix); channels-last weights spare oneDNN the layout reorders: ~3 ms of a ~55 ms
            # click on 2 cores, bit-identical masks and scores.
            for conv in (decoder.upscale_conv1, decoder.upscale_conv2):
                conv.to(memory_format=self._torch.channels_last)
        self.processor = processor
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.name = name
        self.source = source
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, _Embedding] = OrderedDict()

    @classmethod
    def from_folder(cls, folder: str | Path, *, model_class: str = "Sam2Model", processor_class: str = "Sam2Processor",
                    image_processor_class: str = "Sam2ImageProcessor", device: str | None = None,
                    **settings: Any) -> "Sam2Segmenter":
        """A `save_pretrained` folder (config.json, model.safetensors, optional processor files)."""
        if model_class in _NEEDS:
            require(_NEEDS[model_class], "sam2")
        device = pick_device(device)
        model, processor = load_pretrained(folder, model_class, extra="sam2", device=device, dtype=pick_dtype(device),
                                           processor_class=processor_class,
                                           image_processor_class=image_processor_class)
        settings.setdefault("source", Path(folder).name)
        return cls(model, processor, **settings)

    @classmethod
    def from_model(cls, name: str = "sam2.1-hiera-tiny", **settings: Any) -> "Sam2Segmenter":
        """A model declared in the manifest (ModelNotFound names the download command).

        `settings`: the `OPTIONS`; another backend's (SAM's `variant`, `decoder`) is a one-line error.
        """
        unknown = sorted(set(settings) - set(cls.OPTIONS))
        if unknown:
            raise InvalidInputError(f"segmenter {name} has no option {', '.join(unknown)} (SAM takes variant, decoder "
                                    f"and dtype); it takes {', '.join(cls.OPTIONS)}")
        spec = get_spec(name)
        # SAM 3's folder holds its detector and its tracker; clicks go to the tracker.
        loader = spec.loader.get("tracker", spec.loader) if spec.loader.get("backend") == "sam3-hf" else spec.loader
        if "model_class" not in loader or loader.get("backend") not in (BACKEND, None):
            raise InvalidInputError(f"model {name!r} is a {spec.kind}, not a SAM 2-family segmenter")
        settings.setdefault("name", name)
        for key in ("model_class", "processor_class", "image_processor_class"):
            settings.setdefault(key, loader[key])
        return cls.from_folder(resolve(name).folder, **settings)

    def describe(self) -> str:
        source = f" ({self.source})" if self.source and self.source != self.name else ""
        return f"{type(self.model).__name__} {self.name}{source} on {self.device}"

    def clear_cache(self) -> None:
        """Forget every cached embedding."""
        self._cache.clear()

    def prepare(self, image: np.ndarray) -> None:
        """Compute and cache the image embeddings now, so the first click costs only the decoder."""
        self._embedding(check_rgb(image))

    def segment(self, image: np.ndarray, prompt: Prompt, *, multimask: bool = False,
                refine: RefineSeed | None = None) -> Detections:
        """Masks for the prompt's clicks and boxes (see `Segmenter`).

        Several boxes go through the decoder as one batch of objects. `refine` (a previous result's
        `refine_seed`: the low-res logits of its best mask) goes in as the mask prompt; a
        single-instance result's seed holds its own.
        """
        image = check_rgb(image)
        check_prompt(prompt, image.shape)
        key = image_key(image)
        mask_input = seed_data(refine, key, self.name)
        expected = (1, *self.model.prompt_encoder.mask_input_size)
        if mask_input is not None and mask_input.shape != expected:
            raise InvalidInputError(f"a SAM 2 refine seed is low-res logits of shape {expected}; got {mask_input.shape}")
        entry = self._embedding(image, key)
        single = len(prompt.boxes) <= 1
        given = None
        if single and mask_input is not None:
            given = self._torch.from_numpy(mask_input.copy())[None].to(self.device, self.dtype)
        masks, scores, logits = self.decode(entry.features, entry.original_size, prompt, multimask, given)
        seed = None
        if single:
            seed = RefineSeed(key, self.name, logits[0, int(np.argmax(scores[0]))][None].float().cpu().numpy())
        return candidate_detections(masks, scores, instance_phrases(prompt), multimask, seed)

    def decode(self, features: list, original_size: tuple[int, int], prompt: Prompt, multimask: bool,
               mask_input: Any = None) -> tuple[np.ndarray, np.ndarray, Any]:
        """(objects, candidates, H, W) bool masks, (objects, candidates) scores and the low-res logits.

        `mask_input`: (1, 1, h, w) low-res logits as the mask prompt of a single object, or None.
        """
        torch = self._torch
        h, w = original_size
        kwargs: dict[str, Any] = {}
        if len(prompt.boxes) > 1:
            kwargs["input_boxes"] = [[list(b) for b in prompt.boxes]]
        else:
            if prompt.points:
                kwargs["input_points"] = [[[[x, y] for x, y, _ in prompt.points]]]
                kwargs["input_labels"] = [[[label for _, _, label in prompt.points]]]
            if prompt.boxes:
                kwargs["input_boxes"] = [[list(prompt.boxes[0])]]
        inputs = self.processor(images=None, original_sizes=[[h, w]], return_tensors="pt", **kwargs)
        inputs = {k: v.to(self.device, self.dtype if v.is_floating_point() else v.dtype)
                  for k, v in inputs.items() if k in ("input_points", "input_labels", "input_boxes")}
        with torch.inference_mode():
            out = self.model(image_embeddings=features, input_masks=mask_input, multimask_output=multimask, **inputs)
            masks = self.processor.post_process_masks(out.pred_masks.float().cpu(), [[h, w]])[0]
        return masks.numpy().astype(bool), out.iou_scores[0].float().cpu().numpy(), out.pred_masks[0]

    def _embedding(self, image: np.ndarray, key: bytes | None = None) -> _Embedding:
        key = image_key(image) if key is None else key
        entry = self._cache.get(key)
        if entry is None:
            pixels = self.processor(images=image, return_tensors="pt")["pixel_values"]
            with self._torch.inference_mode():
                features = self.model.get_image_embeddings(pixels.to(self.device, self.dtype))
            entry = _Embedding(list(features), image.shape[:2])
            self._cache[key] = entry
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return entry

