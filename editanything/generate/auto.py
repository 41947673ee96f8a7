"""What "auto" generates with: the best model on disk for this device, and why, in words.

On CUDA, SDXL inpainting when present (sharper, 1024 px; SD 1.5 otherwise). On a CPU, SD 1.5
even when SDXL is there: an SDXL step costs several times an SD 1.5 step, and with LCM-LoRA
present SD 1.5 needs only 4 steps (`--sampler LCM --steps 4 --cfg 1.5`). Without Stable
Diffusion weights, OpenCV's fill (remove only).
"""

from __future__ import annotations

LCM_HINT = "LCM-LoRA is present: --sampler LCM --steps 4 --cfg 1.5 takes 4 steps instead of 25"


def pick(with_options: bool = False) -> tuple[str, str]:
    """(registry name, why). Options such as LoRAs or ControlNets need SD 1.5 (ModelNotFound if missing)."""
    from ..models import find_model, pick_device

    sd15, sdxl = find_model("sd15-inpainting") is not None, find_model("sdxl-inpainting") is not None
    if with_options:
        return "sd15-inpainting", "the LoRAs, embeddings or ControlNets asked for are SD 1.5 add-ons"
    if sdxl and (not sd15 or pick_device().startswith("cuda")):
        lcm = find_model("lcm-lora-sdxl") is not None
        why = "SDXL on CUDA" if sd15 else "the only Stable Diffusion model present"
        return "sdxl-inpainting", why + ("; " + LCM_HINT.replace("25", "25 (SDXL's LCM-LoRA)") if lcm else "")
    if sd15:
        lcm = find_model("lcm-lora-sd15") is not None
        why = "on a CPU: an SDXL step costs several SD 1.5 steps" if sdxl else "the Stable Diffusion model present"
        return "sd15-inpainting", why + ("; " + LCM_HINT if lcm else "; fetch lcm-lora-sd15 for 4-step LCM")
    return "classical", "no Stable Diffusion weights: OpenCV's fill, which can only remove"
