"""The WebUI's "LCM" sampler: LCM-LoRA on Stable Diffusion 1.5 or SDXL, 4–8 steps at CFG 1–2.

LCM-LoRA (latent-consistency/lcm-lora-sdv1-5, -sdxl) distils a model into a latent consistency model:
with diffusers' `LCMScheduler` it needs 4–8 steps instead of 25–50. Choosing the "LCM" sampler
loads the LoRA once, as one more adapter beside the user's LoRAs, and turns it on for LCM runs
only: with any other sampler its weight is 0 and the model is the one the user chose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import InvalidInputError, require

SAMPLER = "LCM"
ADAPTER = "lcm"
LORA_MODELS = {"sd15": "lcm-lora-sd15", "sdxl": "lcm-lora-sdxl"}
SD2_WIDTH = 1024  # SD 2's UNet cross-attention width: a family with no LCM-LoRA


def lora_path(pipe: Any) -> Path:
    """The LCM-LoRA file for this pipeline's model family, or ModelNotFound with the download command."""
    from ..models import resolve

    if hasattr(pipe, "text_encoder_2"):
        return resolve(LORA_MODELS["sdxl"]).path()
    if pipe.unet.config.cross_attention_dim == SD2_WIDTH:
        raise InvalidInputError("the LCM sampler needs an LCM-LoRA, and there is none for Stable Diffusion 2 "
                                "here: pick another sampler, or an SD 1.5 or SDXL model")
    return resolve(LORA_MODELS["sd15"]).path()


def set_lcm(pipe: Any, on: bool, adapters: Sequence[tuple[str, float]]) -> Path | None:
    """Turn the LCM-LoRA on (loading it the first time) or off, keeping the user's adapters at their scales.

    Returns the LoRA file when it is on, for the recipe.
    """
    loaded = ADAPTER in (getattr(pipe.unet, "peft_config", None) or {})  # PEFT's adapters on the UNet
    if not on and not loaded:
        return None
    path = lora_path(pipe) if on else None
    if not loaded:
        require("peft", "diffusion")
        pipe.load_lora_weights(str(path), adapter_name=ADAPTER)
    names = [name for name, _ in adapters] + [ADAPTER]
    pipe.set_adapters(names, adapter_weights=[scale for _, scale in adapters] + [1.0 if on else 0.0])
    return path
