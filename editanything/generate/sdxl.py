"""SDXL inpainting (diffusers/stable-diffusion-xl-1.0-inpainting-0.1) through the stock diffusers pipeline.

`StableDiffusionXLInpaintPipeline` from a diffusers folder (the `sdxl-inpainting` model, or a
path), with `local_files_only=True`. The Hub repo's fp16 variant files are what the manifest
fetches: they load as fp16 on CUDA and are upcast to fp32 on a CPU. The WebUI parameters
(sampler names, LCM with LCM-LoRA, CFG, steps, strength, seed, batch, LoRAs) work as for SD 1.5; SDXL works best at
1024 px (`resolution=1024`). Prompt weights such as `(word:1.3)` are refused rather than
silently ignored: SDXL's two text encoders do not take the WebUI weighting here yet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from ..errors import InvalidInputError, ModelNotFound, require
from ..models.store import cached_sha256
from ..models.variants import folder_variant
from ..types import GenerationParams
from .base import DiffusersGenerator, Lora, load_loras, loading, parse_lora, place, unet_in_channels, unet_weights
from .prompts import has_weights

MODEL = "sdxl-inpainting"


class SDXLGenerator(DiffusersGenerator):
    """SDXL inpainting at the size it is given (a multiple of 8; compose.py crops and resizes).

    model:   "sdxl-inpainting" (resolved by `editanything.models`) or a diffusers SDXL inpainting folder.
    loras:   `Lora(path, scale)` or "PATH:SCALE" strings.
    threads: torch's CPU threads while generating; the recipe records it, as for Stable Diffusion.
    """

    family = "sdxl"
    native_size = 1024
    pipelines = {"txt2img": "StableDiffusionXLPipeline", "img2img": "StableDiffusionXLImg2ImgPipeline"}

    def __init__(self, model: str | os.PathLike = MODEL, *, loras: Sequence[Lora | str] = (),
                 device: str | None = None, dtype: Any = None, threads: int | None = None):
        super().__init__(threads=threads)
        self.folder, self.model_name = _resolve(model)
        self._sha256: str | None = None
        self.loras = [parse_lora(x) if isinstance(x, str) else x for x in loras]
        for lora in self.loras:
            if not Path(lora.path).is_file():
                raise ModelNotFound(f"{lora.path}: no such LoRA file")
        self._device, self._dtype = device, dtype

    @property
    def name(self) -> str:
        return self.model_name

    def describe(self) -> str:
        return f"{self.name} (SDXL inpainting, best at --resolution 1024{'; ' + self.note if self.note else ''})"

    def build(self):
        require("torch", "diffusion")
        diffusers = require("diffusers", "diffusion")
        from ..models import pick_device, pick_dtype

        device = pick_device(self._device)
        dtype = self._dtype or pick_dtype(device)
        with loading("SDXL inpainting model", self.name, self.folder):
            pipe = diffusers.StableDiffusionXLInpaintPipeline.from_pretrained(
                str(self.folder), dtype=dtype, variant=folder_variant(self.folder), local_files_only=True)
            if self.loras:
                load_loras(pipe, self.loras)
        place(pipe, device)
        return pipe

    @property
    def text_to_image(self) -> bool:
        """Whether txt2img and img2img can run: the base model's 4-channel UNet, not the inpainting one's 9."""
        return unet_in_channels(self.folder) in (4, None)

    def check_params(self, params: GenerationParams) -> None:
        if has_weights(params.prompt) or has_weights(params.negative_prompt):
            raise InvalidInputError("prompt weights such as (word:1.3) are not supported with SDXL yet; "
                                    "write the prompt without them")

    def encode(self, pipe: Any, params: GenerationParams) -> dict[str, Any]:
        # The pipeline encodes the text with its two encoders as diffusers does (no WebUI weights here).
        return {"prompt": params.prompt, "negative_prompt": params.negative_prompt or None}

    def model_info(self) -> dict[str, Any]:
        """What the recipe records: model name, folder, the UNet's sha256 (of the file on disk) and the LoRAs."""
        if self._sha256 is None and (weights := unet_weights(self.folder)) is not None:
            self._sha256 = cached_sha256(weights)
        sha = self._sha256
        return {
            "name": self.name, "file": str(self.folder), "format": "diffusers", "family": self.family,
            "sha256": sha, "hash": sha[:10] if sha else None,
            "loras": [{"path": str(x.path), "scale": x.scale, "sha256": cached_sha256(x.path)} for x in self.loras],
            "embeddings": [], "controlnets": [],
        }


def _resolve(model: str | os.PathLike) -> tuple[Path, str]:
    """The diffusers folder and the name the recipe records."""
    from ..models import MODELS, resolve

    if isinstance(model, str) and model in MODELS:
        return resolve(model).folder, model
    path = Path(model).expanduser()
    if path.is_dir() and (path / "model_index.json").is_file():
        # A folder named like a registry model records its full path, so replay finds this folder.
        return path, str(path) if path.name in MODELS else path.name
    raise ModelNotFound(f"no SDXL inpainting model {str(model)!r}: not a known model name nor a diffusers folder")
