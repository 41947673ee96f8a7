"""Grounding DINO (groundingdino-py) behind the Detector protocol: text phrases → boxes.

The stock groundingdino model does the work; around it this module adds what its `predict()`
leaves to the caller: the device chosen by our models layer (its default is "cuda"), the BERT
text encoder from a local folder declared in the manifest (its default is a hub download),
transformers 5 support (`bert_compat`), pixel xyxy boxes, NMS across phrases, top-k, and a
`NothingFound` error instead of an empty result that would silently edit nothing.
"""

from __future__ import annotations

import contextlib
import io
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, ModelNotFound, NothingFound, first_line, require
from ..models import get_spec, pick_device, pick_dtype, resolve
from ..models.checkpoint import load_torch_state
from ..types import Detections, check_rgb

# ImageNet statistics and the 800 px short side / 1333 px long side Grounding DINO was trained with.
_MEAN = [0.485, 0.456, 0.406]
_STD = [0.229, 0.224, 0.225]


def normalize_caption(text: str) -> str:
    """Grounding DINO's caption form: lower-case phrases separated and ended by " ."

    "The dog" → "the dog .", "Dog. Red car" → "dog . red car ."; empty phrases are dropped.
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a string of phrases like 'dog . red car'; got {type(text).__name__}")
    phrases = [" ".join(p.split()) for p in text.lower().split(".")]
    phrases = [p for p in phrases if p]
    if not phrases:
        raise InvalidInputError(f"text {text!r} names nothing to detect; give phrases like 'dog . red car'")
    return " . ".join(phrases) + " ."


def packaged_config(name: str) -> Path:
    """A config shipped inside groundingdino (`GroundingDINO_SwinT_OGC.py`), or a path given as is."""
    path = Path(name)
    if path.is_absolute() or path.parent != Path("."):
        candidate = path
    else:
        gd = require("groundingdino", "detect")
        candidate = Path(gd.__file__).parent / "config" / name
    if not candidate.is_file():
        raise InvalidInputError(f"Grounding DINO config {candidate} does not exist; reinstall groundingdino-py==0.4.0")
    return candidate


def _first_mismatch(exc: RuntimeError) -> str:
    """The first "size mismatch for …" line of load_state_dict's many-line error."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines()]
    return next((line for line in lines if line.startswith("size mismatch")), first_line(exc, 1))[:200]


def load_grounding_dino(config_path: str | Path, checkpoint_path: str | Path, bert_dir: str | Path,
               device: str | None = None) -> Any:
    """Build the groundingdino model of `config_path` with the BERT in `bert_dir`, load an official `.pth`.

    The checkpoint is read with `weights_only=True` (no code runs from the file). Its keys must
    cover the whole model: a missing key means the file belongs to another config.
    """
    require("torch", "detect")
    require("groundingdino", "detect")
    from groundingdino.models import build_model
    from groundingdino.util.misc import clean_state_dict
    from groundingdino.util.slconfig import SLConfig

    from .bert_compat import patched_bert_warper

    config_path, checkpoint_path, bert_dir = Path(config_path), Path(checkpoint_path), Path(bert_dir)
    if not checkpoint_path.is_file():
        raise ModelNotFound(f"Grounding DINO checkpoint {checkpoint_path} does not exist")
    if not (bert_dir / "config.json").is_file() or not (bert_dir / "vocab.txt").is_file():
        raise ModelNotFound(f"{bert_dir} is not a BERT model folder (config.json and vocab.txt expected)")
    checkpoint = load_torch_state(checkpoint_path, "Grounding DINO checkpoint")  # checked before a model is built
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise InvalidInputError(f"{checkpoint_path} holds no state dict (expected {{'model': state_dict}})")
    device = pick_device(device)
    args = SLConfig.fromfile(str(config_path))
    args.device = device
    # A local folder, never a hub name: groundingdino would otherwise download bert-base-uncased.
    args.text_encoder_type = str(bert_dir)
    # Activation checkpointing only saves memory for training; at inference it is overhead (and warnings).
    args.use_checkpoint = args.use_transformer_ckpt = False
    # groundingdino prints the text encoder's name while building; library code stays quiet.
    with patched_bert_warper(), contextlib.redirect_stdout(io.StringIO()):
        model = build_model(args)
    # Official checkpoints carry a few keys the model no longer has (label_enc, BERT's position_ids buffer).
    try:
        result = model.load_state_dict(clean_state_dict(state), strict=False)
    except RuntimeError as exc:  # tensors of another shape: torch lists every one of them
        raise InvalidInputError(
            f"{checkpoint_path.name} does not fit config {config_path.name} ({_first_mismatch(exc)}); "
            f"is it another Grounding DINO variant (Swin-T vs Swin-B)?"
        ) from exc
    if result.missing_keys:
        raise InvalidInputError(
            f"{checkpoint_path.name} does not fit config {config_path.name}: {len(result.missing_keys)} weights "
            f"missing (first: {result.missing_keys[0]}); is it another Grounding DINO variant?"
        )
    return model.eval().to(device)


def check_thresholds(box_threshold: Any, text_threshold: Any, nms_iou: Any, top_k: Any) -> None:
    """The checks every Grounding DINO backend makes on its settings, with the expected range."""
    check_score("box_threshold", box_threshold)
    check_score("text_threshold", text_threshold)
    if nms_iou is not None and (not _is_number(nms_iou) or not 0.0 < nms_iou <= 1.0):
        raise InvalidInputError(f"nms_iou must be in (0, 1] or None (no suppression); got {nms_iou!r}")
    check_top_k(top_k)


def check_score(label: str, value: Any) -> None:
    """A detector's score threshold: a number in [0, 1]."""
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"{label} must be a number in [0, 1]; got {value!r}")


def check_top_k(top_k: Any) -> None:
    """How many detections to keep: an int >= 1, or None for all."""
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise InvalidInputError(f"top_k must be an int >= 1 or None (keep all); got {top_k!r}")


class GroundingDinoDetector:
    """Text → boxes with Grounding DINO.

    `box_threshold`: a query is kept when its best token score exceeds it; `text_threshold`: the
    tokens above it form the query's phrase (as groundingdino's `predict`). Then boxes are sorted
    by score, overlapping boxes are suppressed whatever their phrase (`nms_iou`, None = off:
    Grounding DINO often returns one object twice under two phrases), and the best `top_k` kept.
    `image_size`/`max_size`: the resize of the image's short/long side before the model.
    """

    def __init__(self, model: Any, *, box_threshold: float = 0.35, text_threshold: float = 0.25,
                 top_k: int | None = None, nms_iou: float | None = 0.5, device: str | None = None,
                 image_size: int = 800, max_size: int = 1333, name: str = "groundingdino", source: str = "") -> None:
        """`model` is a built groundingdino `GroundingDINO` with weights (see `load_grounding_dino`)."""
        torch = require("torch", "detect")
        check_thresholds(box_threshold, text_threshold, nms_iou, top_k)
        for label, value in (("image_size", image_size), ("max_size", max_size)):
            if not isinstance(value, int) or value < 32:
                raise InvalidInputError(f"{label} must be an int >= 32 pixels; got {value!r}")
        self.box_threshold = float(box_threshold)
        self.text_threshold = float(text_threshold)
        self.top_k = top_k
        self.nms_iou = None if nms_iou is None else float(nms_iou)
        self.image_size = image_size
        self.max_size = max_size
        self.device = pick_device(device)
        # Weights stay fp32; on CUDA the forward runs under fp16 autocast, because groundingdino makes
        # fp32 tensors inside forward (positional encodings, reference points) that a model cast to
        # half would mix with fp16 weights.
        self.dtype = pick_dtype(self.device)
        self.model = model.eval().to(self.device)
        self.name = name
        self.source = source
        self._torch = torch

    @classmethod
    def from_files(cls, config_path: str | Path, checkpoint_path: str | Path, bert_dir: str | Path,
                   **settings: Any) -> "GroundingDinoDetector":
        """A config `.py`, an official-format checkpoint `.pth` and a local BERT folder."""
        model = load_grounding_dino(config_path, checkpoint_path, bert_dir, settings.get("device"))
        settings.setdefault("source", Path(checkpoint_path).name)
        return cls(model, **settings)

    @classmethod
    def from_model(cls, name: str = "groundingdino-swint-ogc", *, config: str | Path | None = None,
                   **settings: Any) -> "GroundingDinoDetector":
        """A detector declared in the manifest; its BERT comes from the `bert-base-uncased` model folder.

        `config` overrides the manifest's config (a file name inside groundingdino's config folder,
        or a path). ModelNotFound (with the download command) when a file is absent.
        """
        spec = get_spec(name)
        if spec.kind != "detector" or "config" not in spec.loader:
            raise InvalidInputError(f"model {name!r} is a {spec.kind}, not a Grounding DINO detector")
        checkpoint = resolve(name).path()
        bert_dir = resolve("bert-base-uncased").folder
        config_path = packaged_config(str(config or spec.loader["config"]))
        settings.setdefault("name", name)
        return cls.from_files(config_path, checkpoint, bert_dir, **settings)

    def describe(self) -> str:
        source = f" ({self.source})" if self.source else ""
        return f"Grounding DINO {self.name}{source} on {self.device}"

    def preprocess(self, image: np.ndarray) -> Any:
        """RGB uint8 (H, W, 3) → the normalised (3, h, w) float tensor the model reads (upstream transforms)."""
        from groundingdino.datasets import transforms as T
        from PIL import Image

        resized, _ = T.resize(Image.fromarray(image), None, self.image_size, self.max_size)
        tensor, _ = T.ToTensor()(resized, None)
        tensor, _ = T.Normalize(_MEAN, _STD)(tensor, None)
        return tensor

    def detect(self, image: np.ndarray, text: str) -> Detections:
        """Boxes (xyxy, pixels, clipped to the image), scores and phrases for `text`, best first.

        Raises NothingFound naming the best score when no box passes `box_threshold`.
        """
        torch = self._torch
        from groundingdino.util.utils import get_phrases_from_posmap
        from torchvision.ops import box_convert, nms

        image = check_rgb(image)
        caption = normalize_caption(text)
        tokenizer = self.model.tokenizer
        tokenized = tokenizer(caption)
        if len(tokenized["input_ids"]) > self.model.max_text_len:
            raise InvalidInputError(
                f"text is {len(tokenized['input_ids'])} tokens long; Grounding DINO reads at most "
                f"{self.model.max_text_len}: use fewer phrases"
            )
        pixels = self.preprocess(image).to(self.device)
        with torch.no_grad(), self._autocast():
            outputs = self.model(pixels[None], captions=[caption])
        token_scores = outputs["pred_logits"][0].float().sigmoid().cpu()  # (queries, 256)
        boxes = outputs["pred_boxes"][0].float().cpu()  # (queries, 4) cx, cy, w, h in [0, 1]
        scores = token_scores.max(dim=1).values
        keep = scores > self.box_threshold
        if not bool(keep.any()):
            raise NothingFound(
                f"no '{caption[:-2]}' above box_threshold {self.box_threshold:g}; best score {float(scores.max()):.2f}"
            )
        token_scores, boxes, scores = token_scores[keep], boxes[keep], scores[keep]
        phrases = [
            get_phrases_from_posmap(row > self.text_threshold, tokenized, tokenizer).replace(".", "").strip()
            for row in token_scores
        ]
        h, w = image.shape[:2]
        xyxy = box_convert(boxes * torch.tensor([w, h, w, h]), in_fmt="cxcywh", out_fmt="xyxy")
        xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, w)
        xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, h)
        order = torch.argsort(scores, descending=True, stable=True)
        if self.nms_iou is not None:
            # nms keeps the survivors in descending score order, like `order`.
            order = nms(xyxy, scores, self.nms_iou)
        if self.top_k is not None:
            order = order[: self.top_k]
        idx = order.tolist()
        return Detections(xyxy[idx].numpy(), scores[idx].numpy(), [phrases[i] for i in idx])

    def _autocast(self):
        if self.dtype == self._torch.float32:
            return contextlib.nullcontext()
        return self._torch.autocast(device_type=self._torch.device(self.device).type, dtype=self.dtype)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
