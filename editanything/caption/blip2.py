"""BLIP-2 (transformers) behind the Captioner protocol: whole-image and region captions.

Regions are captioned on the masked crop `regions.py` describes. Decoding is greedy (no sampling,
one beam): the same image and mask always give the same words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, require
from ..models import get_spec, pick_device, pick_dtype, resolve
from .regions import RegionCaptioner

DEFAULT_PROMPT = "Question: what is this? Answer:"  # BLIP-2's VQA form; pass it to ask rather than describe


class Blip2Captioner(RegionCaptioner):
    """Captions with `Blip2ForConditionalGeneration`; regions as `RegionCaptioner` crops them."""

    def __init__(self, model: Any, processor: Any, *, max_new_tokens: int = 30, padding: float = 0.1,
                 batch_size: int = 8, device: str | None = None, name: str = "blip2", source: str = "") -> None:
        """`model` and `processor`: a loaded BLIP-2 model and its `Blip2Processor`.

        The model is moved to `device` (models layer's choice when None) in the models layer's
        dtype there: fp16 on CUDA, fp32 on CPU.
        """
        torch = require("torch", "caption")
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise InvalidInputError(f"max_new_tokens must be an int >= 1; got {max_new_tokens!r}")
        self._regions(processor, padding, batch_size)
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.processor = processor
        self.max_new_tokens = max_new_tokens
        self.name = name
        self.source = source
        self._torch = torch

    @classmethod
    def from_pretrained(cls, folder: str | Path, **settings: Any) -> "Blip2Captioner":
        """A local `save_pretrained` folder (model + processor); never downloads."""
        transformers = require("transformers", "caption")
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise InvalidInputError(f"{folder} is not a BLIP-2 model folder (no config.json)")
        dtype = pick_dtype(pick_device(settings.get("device")))
        verbosity = transformers.logging.get_verbosity()
        transformers.logging.set_verbosity_error()  # its many-line load report; a mismatch is one line below
        try:
            model = transformers.Blip2ForConditionalGeneration.from_pretrained(
                str(folder), local_files_only=True, dtype=dtype)
            processor = transformers.Blip2Processor.from_pretrained(str(folder), local_files_only=True)
        except RuntimeError as exc:  # tensors whose shapes differ from config.json
            weights = sorted(p.name for p in folder.glob("*.safetensors")) or ["the weights"]
            raise InvalidInputError(
                f"{folder / weights[0]}: its tensors do not fit {folder / 'config.json'} (shapes differ); the folder "
                f"mixes files of different models: download it again") from exc
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"{folder}: cannot load BLIP-2 ({str(exc).splitlines()[0]})") from exc
        finally:
            transformers.logging.set_verbosity(verbosity)
        settings.setdefault("source", folder.name)
        return cls(model, processor, **settings)

    @classmethod
    def from_model(cls, name: str = "blip2-opt-2.7b", **settings: Any) -> "Blip2Captioner":
        """A captioner declared in the manifest; ModelNotFound (with the download command) when absent."""
        spec = get_spec(name)
        if spec.kind != "captioner":
            raise InvalidInputError(f"model {name!r} is a {spec.kind}, not a captioner")
        folder = resolve(name).folder
        settings.setdefault("name", name)
        return cls.from_pretrained(folder, **settings)

    def describe(self) -> str:
        source = f" ({self.source})" if self.source else ""
        return f"BLIP-2 {self.name}{source} on {self.device}"

    def _generate(self, images: list[np.ndarray], prompt: str | None) -> list[str]:
        from PIL import Image

        if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
            raise InvalidInputError(f"prompt must be a non-empty string like {DEFAULT_PROMPT!r}; got {prompt!r}")
        pil = [Image.fromarray(im) for im in images]
        text = None if prompt is None else [prompt] * len(pil)
        inputs = self.processor(images=pil, text=text, return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        with self._torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1)
        if "input_ids" in inputs:
            # The output repeats the prompt (and the image placeholders) before the answer.
            out = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]
