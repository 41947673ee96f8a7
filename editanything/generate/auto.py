"""What "auto" generates with: the best model on disk for this device, and why, in words.

On CUDA: FLUX.2 [klein] 4B when present (the newest: step-distilled, 4 steps, sub-second on a recent
GPU in about 13 GB of VRAM), then SDXL inpainting (sharper than SD 1.5, 1024 px), then SD 1.5.
On a CPU: SD 1.5 even when SDXL or FLUX.2 is there: an SDXL step costs several times an SD 1.5
step, and FLUX.2 klein's 4B transformer plus its 4B Qwen3 text encoder need about 32 GB of RAM in
fp32; with LCM-LoRA present SD 1.5 needs only 4 steps (`--sampler LCM --steps 4 --cfg 1.5`).
Without SD 1.5 a CPU takes SDXL, then FLUX.2. Without any of them, OpenCV's fill (remove only).
"""

from __future__ import annotations

LCM_HINT = "LCM-LoRA is present: --sampler LCM --steps 4 --cfg 1.5 takes 4 steps instead of 25"


def order(cuda: bool) -> tuple[str, ...]:
    """The diffusion models `pick` prefers on this kind of device, best first (it takes the first present)."""
    if cuda:
        return ("flux2-klein-4b", "sdxl-inpainting", "sd15-inpainting")
    return ("sd15-inpainting", "sdxl-inpainting", "flux2-klein-4b")


def pick(with_options: bool = False, device: str | None = None) -> tuple[str, str]:
    """(registry name, why) for `device` (default: the deep backends'). Options such as LoRAs or ControlNets
    need SD 1.5 (ModelNotFound if missing)."""
    from ..models import find_model, pick_device

    sd15, sdxl = find_model("sd15-inpainting") is not None, find_model("sdxl-inpainting") is not None
    flux2 = find_model("flux2-klein-4b") is not None
    if with_options:
        return "sd15-inpainting", "the LoRAs, embeddings or ControlNets asked for are SD 1.5 add-ons"
    cuda = (device or pick_device()).startswith("cuda")
    if flux2 and (cuda or not (sd15 or sdxl)):
        why = ("FLUX.2 [klein] 4B on CUDA: the newest, 4 steps in about 13 GB of VRAM" if cuda else
               "the only diffusion model present; on a CPU it needs about 32 GB of RAM and is slow")
        return "flux2-klein-4b", why
    if sdxl and (not sd15 or cuda):
        lcm = find_model("lcm-lora-sdxl") is not None
        why = "SDXL on CUDA" if sd15 else "the only Stable Diffusion model present"
        return "sdxl-inpainting", why + ("; " + LCM_HINT.replace("25", "25 (SDXL's LCM-LoRA)") if lcm else "")
    if sd15:
        lcm = find_model("lcm-lora-sd15") is not None
        why = ("on a CPU: an SDXL step costs several SD 1.5 steps" if sdxl else
               "on a CPU: FLUX.2 klein needs about 32 GB of RAM in fp32" if flux2 else
               "the Stable Diffusion model present")
        return "sd15-inpainting", why + ("; " + LCM_HINT if lcm else "; fetch lcm-lora-sd15 for 4-step LCM")
    return "classical", "no Stable Diffusion weights: OpenCV's fill, which can only remove"


def text_order(cuda: bool) -> tuple[str, ...]:
    """The text-to-image models `pick_text` prefers on this kind of device, best first."""
    if cuda:
        return ("flux2-klein-4b", "sdxl-base", "sd15")
    return ("sd15", "sdxl-base", "flux2-klein-4b")


def pick_text(with_options: bool = False) -> tuple[str, str]:
    """(model name, why) for `generate`: as `pick`, over the text-to-image models. LoRAs and embeddings
    are SD 1.5 add-ons; ModelNotFound with the download command when nothing fits is on disk."""
    from ..errors import ModelNotFound
    from ..models import MODELS, download_command, find_model, pick_device

    cuda = pick_device().startswith("cuda")
    names = ("sd15",) if with_options else text_order(cuda)
    present = [n for n in names if n in MODELS and find_model(n) is not None]
    if not present:
        raise ModelNotFound(f"generate needs a text-to-image model and none is on disk; fetch one with: "
                            f"{download_command('sd15')}"
                            + (" (the LoRAs or embeddings asked for are SD 1.5 add-ons)" if with_options else ""))
    name = present[0]
    if with_options:
        return name, "the LoRAs or embeddings asked for are SD 1.5 add-ons"
    device = "CUDA" if cuda else "a CPU"
    return name, f"the best text-to-image model present for {device}" + (
        "; fetch lcm-lora-sd15 for 4-step LCM" if name == "sd15" and find_model("lcm-lora-sd15") is None else "")
