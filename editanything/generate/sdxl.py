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

import numpy as np

from ..errors import InvalidInputError, ModelNotFound, require
from ..models.store import cached_sha256
from ..models.variants import folder_variant
from ..types import check_mask, check_rgb
from .diffusion import HeldPipeline, Lora, load_loras, loading, parse_lora, place, unet_weights, use_sampler
from ..types import GenerationParams
from .params import WEBUI_DEFAULTS
from .prompts import has_weights

MODEL = "sdxl-inpainting"


class SDXLGenerator(HeldPipeline):
    """SDXL inpainting at the size it is given (a multiple of 8; compose.py crops and resizes).

    model: "sdxl-inpainting" (resolved by `editanything.models`) or a diffusers SDXL inpainting folder.
    loras: `Lora(path, scale)` or "PATH:SCALE" strings.
    """

    works_at_any_size = False
    note = ""  # why "auto" chose this model, shown by describe()

    def __init__(self, model: str | os.PathLike = MODEL, *, loras: Sequence[Lora | str] = (),
                 device: str | None = None, dtype: Any = None):
        self.folder, self.model_name = _resolve(model)
        self._sha256: str | None = None
        self.loras = [parse_lora(x) if isinstance(x, str) else x for x in loras]
        for lora in self.loras:
            if not Path(lora.path).is_file():
                raise ModelNotFound(f"{lora.path}: no such LoRA file")
        self._device, self._dtype = device, dtype
        self._pipe = None
        self._scheduler_config: dict[str, Any] = {}
        self._lcm_lora: Path | None = None
        self.last_seeds: list[int] = []

    @property
    def name(self) -> str:
        return self.model_name

    def describe(self) -> str:
        return f"{self.name} (SDXL inpainting, best at --resolution 1024{'; ' + self.note if self.note else ''})"

    def load(self):
        """Build the pipeline now (it is otherwise built on the first `inpaint`)."""
        if self._pipe is not None:
            return self._pipe
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
        self._scheduler_config = dict(pipe.scheduler.config)
        place(pipe, device)
        self._pipe = pipe
        return pipe

    def inpaint(self, image: np.ndarray, mask: np.ndarray, params: GenerationParams) -> list[np.ndarray]:
        """batch_size × batch_count images the size of `image`; the seeds used are in `last_seeds`."""
        image = check_rgb(image)
        mask = check_mask(mask, image.shape)
        h, w = image.shape[:2]
        if h % 8 or w % 8:
            raise InvalidInputError(f"SDXL needs sides that are multiples of 8; got {w}x{h} "
                                    "(compose.edit_region crops and resizes for you)")
        if has_weights(params.prompt) or has_weights(params.negative_prompt):
            raise InvalidInputError("prompt weights such as (word:1.3) are not supported with SDXL yet; "
                                    "write the prompt without them")
        params = params.with_defaults(WEBUI_DEFAULTS).with_seed()  # unset sampler/steps/CFG: the WebUI's
        pipe = self.load()
        import torch
        from PIL import Image

        self._lcm_lora = use_sampler(pipe, params.sampler, self._scheduler_config, self.loras)
        seeds = params.image_seeds()
        results: list[np.ndarray] = []
        for start in range(0, len(seeds), params.batch_size):
            generators = [torch.Generator("cpu").manual_seed(s) for s in seeds[start:start + params.batch_size]]
            out = pipe(
                prompt=params.prompt, negative_prompt=params.negative_prompt or None,
                image=Image.fromarray(image), mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
                height=h, width=w, strength=params.strength, num_inference_steps=params.steps,
                guidance_scale=params.cfg_scale, num_images_per_prompt=params.batch_size,
                generator=generators, output_type="np",
            )
            # The rounding diffusers uses for its PIL output, so both give the same pixels.
            results += list((out.images * 255).round().astype(np.uint8))
        self.last_seeds = seeds
        return results

    def model_info(self) -> dict[str, Any]:
        """What the recipe records: model name, folder, the UNet's sha256 (of the file on disk) and the LoRAs."""
        if self._sha256 is None and (weights := unet_weights(self.folder)) is not None:
            self._sha256 = cached_sha256(weights)
        sha = self._sha256
        return {
            "name": self.name, "file": str(self.folder), "format": "diffusers", "family": "sdxl",
            "sha256": sha, "hash": sha[:10] if sha else None,
            "loras": [{"path": str(x.path), "scale": x.scale, "sha256": cached_sha256(x.path)} for x in self.loras],
            **({"lcm_lora": {"path": str(self._lcm_lora), "sha256": cached_sha256(self._lcm_lora)}}
               if self._lcm_lora else {}),
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
