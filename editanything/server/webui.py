"""The WebUI's txt2img / img2img fields, and how each maps onto an `EditRequest` or is refused by name.

Every field of the WebUI's request models is declared, so a client that sends all of them (as
`webuiapi` does) is understood; a field we cannot honour is accepted only at the value that asks
for nothing (`restore_faces: false`, `alwayson_scripts: {}`), and refused by name otherwise. A
field that is no WebUI field is refused by name too (`extra="forbid"`).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import InvalidInputError
from ..types import GenerationParams
from ..generate.prompts import Style, apply_styles, pick_styles
from ..generate.samplers import canonical_name, sampler_names

SCHEDULERS = {"automatic": "Automatic", "karras": "Karras"}


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = ""
    negative_prompt: str = ""
    styles: Optional[list[str]] = None
    seed: int = -1
    subseed: Optional[int] = None
    subseed_strength: Optional[float] = None
    seed_resize_from_h: Optional[int] = None
    seed_resize_from_w: Optional[int] = None
    sampler_name: Optional[str] = None
    sampler_index: Optional[str] = None
    scheduler: Optional[str] = None
    batch_size: int = 1
    n_iter: int = 1
    steps: Optional[int] = None
    cfg_scale: Optional[float] = None
    width: int = 512
    height: int = 512
    restore_faces: Optional[bool] = None
    tiling: Optional[bool] = None
    do_not_save_samples: Optional[bool] = None
    do_not_save_grid: Optional[bool] = None
    eta: Optional[float] = None
    denoising_strength: Optional[float] = None
    s_min_uncond: Optional[float] = None
    s_churn: Optional[float] = None
    s_tmax: Optional[float] = None
    s_tmin: Optional[float] = None
    s_noise: Optional[float] = None
    override_settings: Optional[dict[str, Any]] = None
    override_settings_restore_afterwards: Optional[bool] = None
    refiner_checkpoint: Optional[str] = None
    refiner_switch_at: Optional[float] = None
    disable_extra_networks: Optional[bool] = None
    firstpass_image: Optional[str] = None
    comments: Optional[dict[str, Any]] = None
    script_name: Optional[str] = None
    script_args: Optional[list[Any]] = None
    send_images: bool = True
    save_images: bool = False
    alwayson_scripts: Optional[dict[str, Any]] = None
    infotext: Optional[str] = None
    force_task_id: Optional[str] = None


class Img2ImgRequest(_Common):
    """`/sdapi/v1/img2img`: with `mask`, an edit of the masked area (pixels outside it are kept exactly)."""

    init_images: Optional[list[str]] = None
    resize_mode: int = 0
    image_cfg_scale: Optional[float] = None
    mask: Optional[str] = None
    mask_blur_x: Optional[int] = None
    mask_blur_y: Optional[int] = None
    mask_blur: Optional[int] = None
    mask_round: Optional[bool] = None
    inpainting_fill: int = 0
    inpaint_full_res: bool = True
    inpaint_full_res_padding: int = 0
    inpainting_mask_invert: int = 0
    initial_noise_multiplier: Optional[float] = None
    latent_mask: Optional[str] = None
    include_init_images: bool = False


class Txt2ImgRequest(_Common):
    """`/sdapi/v1/txt2img`: `Editor.generate` from the prompt at `width` × `height`. `denoising_strength` and the
    `hr_*` fields belong to the hires fix: they ask for nothing unless `enable_hr` (refused) is set."""

    enable_hr: bool = False
    hr_scale: Optional[float] = None
    hr_upscaler: Optional[str] = None
    hr_second_pass_steps: Optional[int] = None
    hr_resize_x: Optional[int] = None
    hr_resize_y: Optional[int] = None
    firstphase_width: Optional[int] = None
    firstphase_height: Optional[int] = None
    hr_checkpoint_name: Optional[str] = None
    hr_sampler_name: Optional[str] = None
    hr_scheduler: Optional[str] = None
    hr_prompt: Optional[str] = None
    hr_negative_prompt: Optional[str] = None


# field -> values that ask for nothing we lack (None: not sent). Anything else is refused by name.
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "subseed": (None, -1), "subseed_strength": (None, 0), "seed_resize_from_h": (None, -1, 0),
    "seed_resize_from_w": (None, -1, 0), "restore_faces": (None, False), "tiling": (None, False),
    "eta": (None, 0, 1), "s_min_uncond": (None, 0), "s_churn": (None, 0), "s_tmax": (None, 0),
    "s_tmin": (None, 0), "s_noise": (None, 1), "refiner_checkpoint": (None, "", "None"),
    "refiner_switch_at": (None, 0), "disable_extra_networks": (None, False), "firstpass_image": (None, ""),
    "script_name": (None, ""), "save_images": (False,), "initial_noise_multiplier": (None, 1),
    "image_cfg_scale": (None, 1.5), "latent_mask": (None, ""), "include_init_images": (False,),
    "mask_round": (None, True), "resize_mode": (0,), "inpaint_full_res_padding": (0, 32), "enable_hr": (False,),
}
_EMPTY = ("script_args", "alwayson_scripts", "comments")
_WHY = {
    "alwayson_scripts": "no WebUI scripts or extensions run here",
    "script_name": "no WebUI scripts run here",
    "save_images": "the server keeps no outputs; the images come back in the answer",
    "resize_mode": "the edit keeps the photo's size and aspect",
    "inpaint_full_res_padding": "the context around the mask is chosen from the mask's size",
    "restore_faces": "no face restorer runs here",
    "eta": "our samplers use their own eta",
    "enable_hr": "no hires fix runs here",
}


def refuse_unsupported(req: _Common) -> None:
    """InvalidInputError naming the first field whose value asks for something this server does not do."""
    for name in type(req).model_fields:
        value = getattr(req, name)
        if name in _NEUTRAL and value not in _NEUTRAL[name]:
            _refuse(name, value, _NEUTRAL[name])
        if name in _EMPTY and value:
            _refuse(name, value, ())
    hr = [n for n in ("hr_scale", "hr_upscaler", "hr_second_pass_steps", "hr_resize_x", "hr_resize_y",
                      "firstphase_width", "firstphase_height", "hr_checkpoint_name", "hr_sampler_name", "hr_scheduler",
                      "hr_prompt", "hr_negative_prompt") if getattr(req, n, None) not in (None, 0, "", 2)]
    if hr and getattr(req, "enable_hr", False):
        _refuse(hr[0], getattr(req, hr[0]), ())


def _refuse(name: str, value: Any, neutral: tuple[Any, ...]) -> None:
    shown = repr(value) if not isinstance(value, (dict, list)) or len(repr(value)) < 60 else type(value).__name__
    keep = [repr(v) for v in neutral if v is not None]
    why = _WHY.get(name, "editanything cannot honour it")
    tail = f"; leave it out or send {' or '.join(keep)}" if keep else "; leave it out"
    raise InvalidInputError(f"{name}={shown} is not supported: {why}{tail}")


def sampler_of(req: _Common) -> str | None:
    """Our sampler for the WebUI's sampler_name (or the old sampler_index) and scheduler; None: the model's."""
    name = req.sampler_name or req.sampler_index
    scheduler = (req.scheduler or "automatic").lower()
    if scheduler not in SCHEDULERS:
        raise InvalidInputError(f"scheduler {req.scheduler!r} is not supported; choose one of: "
                                f"{', '.join(SCHEDULERS)}")
    if name is None:
        if scheduler != "automatic":
            raise InvalidInputError(f"scheduler {req.scheduler!r} needs a sampler_name")
        return None
    if scheduler == "karras" and not name.lower().endswith("karras"):
        name = f"{name} Karras"
        if name.lower() not in (n.lower() for n in sampler_names()):
            raise InvalidInputError(f"sampler {req.sampler_name!r} with the Karras scheduler is not supported; "
                                    f"samplers with it: {', '.join(n for n in sampler_names() if 'Karras' in n)}")
    return canonical_name(name)


def check_model_override(req: _Common, current: str) -> None:
    """override_settings may only restate the model in use (switch models with POST /options)."""
    for key, value in (req.override_settings or {}).items():
        if key != "sd_model_checkpoint":
            raise InvalidInputError(f"override_settings.{key} is not supported; the only setting taken is "
                                    "sd_model_checkpoint")
        if value not in (current, None, ""):
            raise InvalidInputError(f"override_settings.sd_model_checkpoint={value!r} is not the model in use "
                                    f"({current}); switch models with POST /sdapi/v1/options first")


def styled(req: _Common, styles: dict[str, Style]) -> tuple[str, str]:
    """The prompt and negative prompt with the request's saved `styles` merged in, as `edit --style` does."""
    if not req.styles:
        return req.prompt, req.negative_prompt
    if not styles:
        raise InvalidInputError(f"styles={req.styles!r} is not supported: this server has no saved styles (start it "
                                "with --styles-file styles.csv); put the words in the prompt")
    return apply_styles(req.prompt, req.negative_prompt, pick_styles(styles, req.styles))


def generation_params(req: _Common, max_images: int, styles: dict[str, Style], *,
                      exact_size: bool = False) -> GenerationParams:
    """The WebUI fields as our GenerationParams. `width` × `height` is the size of the picture made
    (`exact_size`: txt2img, img2img without a mask) or, for an edit, sets the long side of its generation."""
    images = req.batch_size * req.n_iter
    if images > max_images:
        raise InvalidInputError(f"batch_size × n_iter = {images} images is over this server's limit of "
                                f"{max_images} per request")
    for name in ("width", "height"):
        value = getattr(req, name)
        if value < 8 or value > 8192 or value % 8:
            raise InvalidInputError(f"{name} must be a multiple of 8 in 8..8192; got {value}")
    prompt, negative = styled(req, styles)
    if isinstance(req, Txt2ImgRequest):  # its denoising_strength is the hires fix's
        strength = GenerationParams.strength
    else:
        strength = 0.75 if req.denoising_strength is None else req.denoising_strength
    size = {"width": req.width, "height": req.height} if exact_size else {"resolution": max(req.width, req.height)}
    return GenerationParams(prompt=prompt, negative_prompt=negative, sampler=sampler_of(req),
                            steps=req.steps, cfg_scale=req.cfg_scale, strength=strength, seed=req.seed,
                            batch_size=req.batch_size, batch_count=req.n_iter, **size)


def mask_blur(req: Img2ImgRequest) -> int:
    """The feather width: mask_blur (default 4), or mask_blur_x/_y when they agree (we blur evenly)."""
    blur = 4 if req.mask_blur is None else req.mask_blur
    given = {v for v in (req.mask_blur_x, req.mask_blur_y) if v is not None}
    if req.mask_blur is None and len(given) == 1:
        blur = given.pop()
    elif given - {blur}:
        raise InvalidInputError(f"mask_blur_x/mask_blur_y ({req.mask_blur_x}, {req.mask_blur_y}) differ from "
                                f"mask_blur {blur}: the edge is feathered evenly, send one mask_blur")
    if blur < 0 or blur > 256:
        raise InvalidInputError(f"mask_blur must be in 0..256 pixels; got {blur}")
    return blur


def check_fill(req: Img2ImgRequest, strength: float) -> None:
    """Below full denoising the masked area starts from the original (inpainting_fill 1); at 1.0 every fill is noise."""
    if req.inpainting_fill not in (0, 1, 2, 3):
        raise InvalidInputError(f"inpainting_fill must be 0 (fill), 1 (original), 2 (latent noise) or 3 (latent "
                                f"nothing); got {req.inpainting_fill}")
    if strength < 1 and req.inpainting_fill != 1:
        raise InvalidInputError(f"inpainting_fill={req.inpainting_fill} with denoising_strength {strength:g} is not "
                                "supported: below 1 the masked area starts from the original; send inpainting_fill 1 "
                                "(original) or denoising_strength 1")


def edit_mask(mask: np.ndarray, image: np.ndarray, invert: int) -> np.ndarray:
    if invert not in (0, 1):
        raise InvalidInputError(f"inpainting_mask_invert must be 0 or 1; got {invert}")
    if mask.shape != image.shape[:2]:
        raise InvalidInputError(f"mask is {mask.shape[1]}x{mask.shape[0]} but init_images[0] is "
                                f"{image.shape[1]}x{image.shape[0]}; send a mask of the image's size")
    return ~mask if invert else mask
