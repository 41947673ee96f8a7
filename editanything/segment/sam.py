"""SAM (segment-anything) behind the Segmenter protocol, with an image-embedding cache.

The stock `SamPredictor` does the work. The image encoder (seconds on a CPU) runs once
per image: its output is kept in a bounded LRU keyed by the image's content hash, so
each further click, and each switch back to a recent image, costs only the decoder.
On a CPU the decoder's transformer runs on ONNX Runtime when it is installed (`sam_onnx`).
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InvalidInputError, ModelNotFound, first_line, require
from ..models import get_spec, pick_device, pick_dtype, resolve
from ..models.checkpoint import load_torch_state
from ..types import Detections, Prompt, RefineSeed, check_rgb, image_key
from . import sam_onnx
from .base import candidate_detections, check_prompt, instance_phrases, seed_data

DECODERS = ("auto", "onnx", "torch")


def _stock_builder(variant: str) -> Callable[[], Any]:
    def build() -> Any:
        return require("segment_anything", "sam").sam_model_registry[variant](checkpoint=None)

    return build


SAM_VARIANTS: dict[str, Callable[[], Any]] = {v: _stock_builder(v) for v in ("vit_h", "vit_l", "vit_b")}
"""Architecture name → builder of a randomly initialised `Sam` that a state dict is loaded into."""


def register_sam_variant(name: str, builder: Callable[[], Any]) -> None:
    """Make another SAM architecture loadable by `SamSegmenter.from_checkpoint(path, name)`."""
    SAM_VARIANTS[name] = builder


@dataclass
class _Embedding:
    features: Any  # torch.Tensor (1, C, h, w): the predictor's image embedding
    original_size: tuple[int, int]
    input_size: tuple[int, int]


class SamSegmenter:
    """Segment Anything over the stock `SamPredictor`; see the module docstring for the cache."""

    OPTIONS = ("variant", "device", "dtype", "cache_size", "decoder")
    """The settings `from_model` takes (what `get_segmenter(name, **options)` may pass)."""

    def __init__(self, model: Any, *, name: str = "sam", source: str = "", dtype: Any = None,
                 cache_size: int = 8, decoder: str = "auto") -> None:
        """`model` is a `segment_anything.modeling.Sam` already on its device.

        `dtype` other than float32 runs the predictor under autocast (weights stay fp32:
        the stock predictor feeds fp32 prompts that a half-precision model would reject).
        `decoder`: "onnx" runs the mask decoder on ONNX Runtime (see `sam_onnx`), "torch" the
        stock PyTorch one; "auto" picks ONNX Runtime on a CPU in float32 when it is installed.
        """
        torch = require("torch", "sam")
        sa = require("segment_anything", "sam")
        if decoder not in DECODERS:
            raise InvalidInputError(f"decoder must be one of {', '.join(DECODERS)}; got {decoder!r}")
        if not isinstance(cache_size, int) or cache_size < 1:
            raise InvalidInputError(f"cache_size must be an int >= 1 (images kept); got {cache_size!r}")
        self.model = model.eval()
        if self.model.device.type == "cpu":
            # The decoder feeds its 2x2 transposed convolutions a channels-last view (a transpose of
            # the token matrix); with channels-last weights oneDNN skips two layout reorders: ~8 ms
            # of a ~70 ms click on 2 cores, with the same numbers.
            self.model.mask_decoder.output_upscaling.to(memory_format=torch.channels_last)
        self.predictor = sa.SamPredictor(self.model)
        self.device = self.model.device
        self.dtype = dtype if dtype is not None else pick_dtype(str(self.device))
        if self.dtype not in (torch.float32, torch.float16):
            # SamPredictor.predict hands back numpy arrays, and numpy has no bfloat16.
            raise InvalidInputError(f"SAM runs in float32 or float16 (autocast); got {self.dtype}")
        self.name = name
        self.source = source
        self.cache_size = cache_size
        self._torch = torch
        self._cache: OrderedDict[bytes, _Embedding] = OrderedDict()
        self._active: bytes | None = None
        self.decoder = "torch"
        self._onnx: sam_onnx.OnnxMaskDecoder | None = None
        if decoder != "torch":
            self._use_onnx_decoder(required=decoder == "onnx")

    def _use_onnx_decoder(self, *, required: bool) -> None:
        torch = self._torch
        why = None
        if self.device.type != "cpu" or self.dtype != torch.float32:
            why = f"ONNX Runtime runs the decoder on a CPU in float32 only (here {self.device.type}, {self.dtype})"
        elif not sam_onnx.onnx_available():
            why = "onnxruntime, onnx or onnxscript is not installed: pip install 'editanything[sam]'"
        else:
            self._onnx = sam_onnx.load(self.model)
            if self._onnx is None:
                why = "the decoder's ONNX export failed (see the log)"
        if why is None:
            self.decoder = "onnx"
        elif required:
            raise InvalidInputError(f"cannot run SAM's decoder on ONNX Runtime: {why}")

    @classmethod
    def from_checkpoint(cls, path: str | Path, variant: str, *, device: str | None = None, dtype: Any = None,
                        cache_size: int = 8, name: str | None = None, decoder: str = "auto") -> "SamSegmenter":
        """Load an official-format SAM state dict (`.pth`) into the `variant` architecture."""
        require("torch", "sam")
        path = Path(path)
        if variant not in SAM_VARIANTS:
            raise InvalidInputError(f"unknown SAM variant {variant!r}; known: {', '.join(SAM_VARIANTS)}")
        if not path.is_file():
            raise ModelNotFound(f"SAM checkpoint {path} does not exist")
        device = pick_device(device)
        state = load_torch_state(path, "SAM checkpoint", map_location=device)  # checked before a model is built
        if not isinstance(state, dict):
            raise InvalidInputError(f"{path} holds a {type(state).__name__}, not a SAM state dict")
        model = SAM_VARIANTS[variant]().to(device)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise InvalidInputError(
                f"{path.name} does not fit SAM {variant} ({first_line(exc, 1)}); is it another variant?"
            ) from exc
        return cls(model, name=name or f"sam-{variant.replace('_', '-')}", source=path.name, dtype=dtype,
                   cache_size=cache_size, decoder=decoder)

    @classmethod
    def from_model(cls, name: str = "sam-vit-b", *, variant: str | None = None, device: str | None = None,
                   dtype: Any = None, cache_size: int = 8, decoder: str = "auto") -> "SamSegmenter":
        """Load a SAM model declared in the manifest (ModelNotFound says how to download it)."""
        spec = get_spec(name)
        if "sam_type" not in spec.loader:
            raise InvalidInputError(f"model {name!r} is a {spec.kind}, not a SAM checkpoint")
        path = resolve(name).path()
        return cls.from_checkpoint(path, variant or spec.loader["sam_type"], device=device, dtype=dtype,
                                   cache_size=cache_size, name=name, decoder=decoder)

    def describe(self) -> str:
        source = f" ({self.source})" if self.source else ""
        decoder = ", decoder on ONNX Runtime" if self.decoder == "onnx" else ""
        return f"SAM {self.name}{source} on {self.device}{decoder}"

    def clear_cache(self) -> None:
        """Forget every cached embedding."""
        self._cache.clear()
        self._active = None
        self.predictor.reset_image()

    def decoding(self):
        """A context in which `self.predictor` decodes with this segmenter's decoder (ONNX Runtime or stock)."""
        return sam_onnx.routed(self.model, self._onnx)

    def prepare(self, image: np.ndarray) -> None:
        """Compute and cache the image embedding now, so the first click costs only the decoder."""
        self._embedding(check_rgb(image))

    def segment(self, image: np.ndarray, prompt: Prompt, *, multimask: bool = False,
                refine: RefineSeed | None = None) -> Detections:
        """Masks for the prompt's clicks and boxes (see `Segmenter`).

        Several boxes go through the decoder in one batched call. `refine` (a previous
        result's `refine_seed`: the low-res logits of its best mask) goes in as the mask
        prompt, as SAM's interactive loop does; the result's seed holds its own.
        """
        image = check_rgb(image)
        check_prompt(prompt, image.shape)
        key = image_key(image)
        mask_input = seed_data(refine, key, self.name)
        expected = (1, *self.model.prompt_encoder.mask_input_size)
        if mask_input is not None and mask_input.shape != expected:
            raise InvalidInputError(f"a SAM refine seed is low-res logits of shape {expected}; got {mask_input.shape}")
        entry = self._embedding(image, key)
        with self._autocast(), self.decoding():
            if len(prompt.boxes) > 1:
                masks, scores = self._predict_boxes(prompt.boxes, entry.original_size, multimask)
                seed = None
            else:
                # A writable copy: torch warns on read-only arrays, and the seed stays the caller's.
                given = None if mask_input is None else mask_input.copy()
                masks, scores, logits = self._predict_one(prompt, multimask, given)
                seed = RefineSeed(key, self.name, logits[int(np.argmax(scores))][None])
                masks, scores = masks[None], scores[None]
        return candidate_detections(masks, scores, instance_phrases(prompt), multimask, seed)

    def _embedding(self, image: np.ndarray, key: bytes | None = None) -> _Embedding:
        key = image_key(image) if key is None else key
        entry = self._cache.get(key)
        if entry is None:
            self._active = None  # set_image resets the predictor first, even when it then fails
            with self._autocast():
                self.predictor.set_image(image)
            entry = _Embedding(self.predictor.features, self.predictor.original_size, self.predictor.input_size)
            self._cache[key] = entry
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
            if self._active != key:
                p = self.predictor
                p.features, p.original_size, p.input_size = entry.features, entry.original_size, entry.input_size
                p.is_image_set = True
        self._active = key
        return entry

    def _predict_one(self, prompt: Prompt, multimask: bool, mask_input: np.ndarray | None):
        coords = labels = box = None
        if prompt.points:
            pts = np.asarray(prompt.points, np.float32)
            coords, labels = pts[:, :2], pts[:, 2].astype(np.int64)
        if prompt.boxes:
            box = np.asarray(prompt.boxes[0], np.float32)
        return self.predictor.predict(coords, labels, box, mask_input, multimask_output=multimask)

    def _predict_boxes(self, boxes: list, original_size: tuple[int, int], multimask: bool):
        torch = self._torch
        boxes_t = torch.as_tensor(np.asarray(boxes, np.float32), device=self.device)
        boxes_t = self.predictor.transform.apply_boxes_torch(boxes_t, original_size)
        masks, scores, _ = self.predictor.predict_torch(None, None, boxes=boxes_t, multimask_output=multimask)
        return masks.cpu().numpy(), scores.float().cpu().numpy()

    def _autocast(self):
        if self.dtype == self._torch.float32:
            return contextlib.nullcontext()
        return self._torch.autocast(device_type=self.device.type, dtype=self.dtype)
