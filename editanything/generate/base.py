"""One diffusers generator loop: the base that SD 1.5, SDXL, FLUX.2 [klein] and the sd-lineart sketch share.

`DiffusersGenerator.run` owns what every family used to write for itself:
- one pipeline call per seed (`num_images_per_prompt=1`, a CPU `torch.Generator` per image): in a batched
  call diffusers draws some latents from the first generator only, so image i would depend on image 0's
  seed and not replay alone;
- the CPU thread count, pinned for the call only and recorded (`threads.pinned`);
- the sampler and the LCM-LoRA switch (`set_sampler`), under the same lock, as they change the pipeline;
- the checks: a NaN or inf output and an output equal to its input are `BadOutput`, never "done";
- progress: after each denoising step `progress.report(Step(...))`; a listener's `Cancelled` ends the
  call there, with the thread count restored and no image returned;
- releasing the memory (`release`).
A family supplies only its pipeline (`build`, and `pipelines` for other modes), its prompt encoding
(`encode`), its defaults and checks (`default_params` where not the WebUI's, `check_params`, `check_size`)
and `model_info`.
A mode is a diffusers pipeline class: `primary_mode` ("inpaint", used by `inpaint`) is what `build`
makes; others (e.g. "img2img", "txt2img") are listed in `pipelines`, built from the loaded one's
components (`from_pipe`), and run by a method that calls `run(mode, params, inputs)` with that mode's
call arguments (a txt2img `generate(params)` passes height and width and no `source`).
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import InvalidInputError, ModelNotFound, require
from ..memory import trim
from ..models.store import cached_sha256
from ..progress import Step, report
from ..types import GenerationParams, check_mask, check_rgb
from .generated import Generated, changed, finite
from .lcm import SAMPLER as LCM_SAMPLER, set_lcm
from .params import model_defaults
from .samplers import make_scheduler
from .threads import check_threads, pinned


@dataclass(frozen=True)
class Lora:
    path: Path
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.scale):
            raise InvalidInputError(f"LoRA {self.path}: the scale must be a finite number; got {self.scale!r}")


def parse_lora(text: str) -> Lora:
    """`PATH` or `PATH:SCALE` (the CLI's `--lora`), scale 1.0 by default."""
    path, _, scale = text.rpartition(":")
    if path and scale:
        try:
            value = float(scale)
        except ValueError:  # a colon in the path, no scale
            return Lora(Path(text))
        return Lora(Path(path), value)
    return Lora(Path(text))


_SHAPE_MISMATCH = re.compile(r"because (\S+) expected shape torch\.Size\((\[[^\]]*\])\), but got torch\.Size\((\[[^\]]*\])\)")


def _load_error(what: str, name: str, path: Path, exc: Exception) -> Exception:
    """One line for a pipeline that does not load: tensors that do not fit the config say so."""
    text = str(exc)
    m = _SHAPE_MISMATCH.search(text)
    if m:
        key, want, got = m.groups()
        return InvalidInputError(
            f"{path}: the weights do not fit the config ({key} has shape {got}, the config wants {want}); "
            f"its files come from different models: download it again")
    return ModelNotFound(f"cannot load {what} {name} from {path}: "
                         f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}")


@contextlib.contextmanager
def loading(what: str, name: str, path: Path) -> Iterator[None]:
    """Loading a pipeline: what fails to load becomes one line naming the model (CUDA OOM passes as it is)."""
    import torch

    try:
        yield
    except torch.cuda.OutOfMemoryError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise _load_error(what, name, path, exc) from exc


def place(pipe: Any, device: str, cpu_offload: bool = False) -> None:
    """Put a loaded pipeline on `device` with its progress bars off; `cpu_offload` on CUDA keeps each
    component on the CPU until it runs (less VRAM, slower)."""
    if cpu_offload and str(device).startswith("cuda"):
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)


def load_loras(pipe, loras: Sequence[Lora]) -> None:
    """Attach LoRAs as PEFT adapters named "lora0", "lora1", … at their scales (LCM switches by these names)."""
    require("peft", "diffusion")
    names = [f"lora{i}" for i in range(len(loras))]
    for name, lora in zip(names, loras):
        pipe.load_lora_weights(str(lora.path), adapter_name=name)
    pipe.set_adapters(names, adapter_weights=[lora.scale for lora in loras])




def use_sampler(pipe: Any, sampler: str, scheduler_config: Mapping[str, Any], loras: Sequence[Lora]) -> Path | None:
    """The WebUI `sampler` as the pipeline's scheduler, with the LCM-LoRA on for "LCM" and off otherwise
    (the user's LoRAs, named as `load_loras` names them, keep their scales); the LCM-LoRA file when on."""
    pipe.scheduler = make_scheduler(sampler, scheduler_config)
    return set_lcm(pipe, sampler == LCM_SAMPLER, [(f"lora{i}", x.scale) for i, x in enumerate(loras)])


_WEIGHT_FILES = tuple(f"diffusion_pytorch_model{v}{x}" for x in (".safetensors", ".bin") for v in ("", ".fp16"))


def weights_file(folder: Path) -> Path | None:
    """A diffusers model folder's weights file (plain or fp16 variant), or None."""
    return next((folder / f for f in _WEIGHT_FILES if (folder / f).is_file()), None)


def unet_weights(folder: Path) -> Path | None:
    """A pipeline folder's UNet weights, whose sha256 names the model in the recipe."""
    return weights_file(folder / "unet")


def unet_in_channels(folder: Path) -> int | None:
    """The input channels of a pipeline folder's UNet (9 for inpainting models, 4 otherwise), None if unknown."""
    import json

    try:
        return int(json.loads((Path(folder) / "unet" / "config.json").read_text(encoding="utf-8"))["in_channels"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def to_uint8(images: np.ndarray, who: str = "the model") -> list[np.ndarray]:
    """A pipeline's float images in [0, 1] as uint8, rounded as diffusers rounds its PIL output; NaN is BadOutput."""
    return list((finite(images, who) * 255).round().astype(np.uint8))


def _on_step_end(index: int, count: int, after_last: Callable[[], None] | None = None) -> Callable[..., dict]:
    """diffusers' `callback_on_step_end`: report the step (a listener may raise Cancelled, which ends the call);
    `after_last` runs once the last denoising step is done, before the VAE decodes."""
    def callback(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
        report(Step(index, count, step, pipe.num_timesteps))
        if after_last is not None and step == pipe.num_timesteps - 1:
            after_last()
        return {}

    return callback


_LOADING = threading.RLock()


class DiffusersGenerator:
    """A generator over one diffusers pipeline, loaded on first use; see the module's docstring.

    Calls are safe from several threads: a call holds the process's generation region (`threads.pinned`)
    from the sampler switch to its last image, so concurrent calls run one after the other and each
    gets what it would get alone.
    """

    works_at_any_size = False
    native_size = 512  # the side txt2img makes when no size is asked for: what the model was trained at
    size_multiple = 8  # txt2img and img2img sides must be multiples of it
    note = ""  # why "auto" chose this model, shown by describe()
    family = ""
    primary_mode = "inpaint"  # the mode of the pipeline `build` makes
    pipelines: dict[str, str] = {}  # other modes -> diffusers pipeline class, built from the loaded one's parts
    loras: Sequence[Lora] = ()
    threads: int | None = None
    # Editor(low_memory=True) turns it on: the text encoder is freed once a call's prompt is encoded,
    # the UNet once its last denoising step is done (before the VAE decodes); each loads again, from
    # its files, when next needed. A family that can reload them implements `drop` and `restore`.
    low_memory = False
    _pipe: Any = None
    _scheduler_config: dict[str, Any] = {}

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = check_threads(threads)
        self._pipe = None
        self._modes: dict[str, Any] = {}
        self._scheduler_config = {}

    # ---- what a family supplies ----------------------------------------------------------

    def build(self) -> Any:
        """Load the `primary_mode` pipeline (placed on its device, progress bars off)."""
        raise NotImplementedError

    def encode(self, pipe: Any, params: GenerationParams) -> dict[str, Any]:
        """The prompt's call arguments (embeddings, or the text where the pipeline encodes it)."""
        raise NotImplementedError

    def model_info(self) -> dict[str, Any]:
        """The model's name, files and their sha256 and add-ons (without the LCM switch, which a call decides)."""
        raise NotImplementedError

    def check_params(self, params: GenerationParams) -> None:
        """Refuse what this model cannot honour (before anything loads)."""

    def check_size(self, width: int, height: int) -> None:
        if height % 8 or width % 8:
            raise InvalidInputError(f"{self.name} needs sides that are multiples of 8; got {width}x{height} "
                                    "(compose.edit_region crops and resizes for you)")

    def set_sampler(self, pipe: Any, params: GenerationParams) -> Path | None:
        """Switch the pipeline to `params.sampler`; the LCM-LoRA file when that turned it on."""
        return use_sampler(pipe, params.sampler, self._scheduler_config, self.loras)

    def inpaint_inputs(self, pipe: Any, image: np.ndarray, mask: np.ndarray, params: GenerationParams,
                       control: Mapping[str, np.ndarray] | None) -> dict[str, Any]:
        """The "inpaint" call's arguments besides the prompt, steps, CFG and seed."""
        if control:
            raise InvalidInputError(f"{self.name} takes no ControlNet control images")
        from PIL import Image

        h, w = image.shape[:2]
        return dict(image=Image.fromarray(image), mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
                    height=h, width=w, strength=params.strength)

    def txt2img_inputs(self, pipe: Any, params: GenerationParams, width: int, height: int) -> dict[str, Any]:
        """The "txt2img" call's arguments besides the prompt, steps, CFG and seed."""
        return {"height": height, "width": width}

    def img2img_inputs(self, pipe: Any, image: np.ndarray, params: GenerationParams) -> dict[str, Any]:
        """The "img2img" call's arguments besides the prompt, steps, CFG and seed."""
        from PIL import Image

        return {"image": Image.fromarray(image), "strength": params.strength}

    def drop(self, component: str) -> None:
        """Free a component of the loaded pipelines ("text_encoder", "unet"), if this family can `restore` it."""

    def restore(self, component: str) -> None:
        """Load a component `drop` freed again (nothing to do if it is there)."""

    def finish(self, image: np.ndarray, source: np.ndarray | None) -> np.ndarray:
        """One output image as returned (FLUX.2 cuts its padding off here)."""
        return image

    # ---- loading -------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._pipe is not None

    def load(self) -> Any:
        """Build the pipeline now (it is otherwise built on the first call)."""
        with _LOADING:
            if self._pipe is None:
                pipe = self.build()
                self._scheduler_config = dict(pipe.scheduler.config)
                self._pipe = pipe
            return self._pipe

    def pipeline(self, mode: str) -> Any:
        """The pipeline of `mode`: the loaded one for `primary_mode`, else one sharing its components."""
        pipe = self.load()
        if mode == self.primary_mode:
            return pipe
        if mode not in self.pipelines:
            raise InvalidInputError(f"{self.name} has no {mode} pipeline; it runs: "
                                    f"{', '.join([self.primary_mode, *self.pipelines])}")
        with _LOADING:
            if mode not in self._modes:
                diffusers = require("diffusers", "diffusion")
                self._modes[mode] = getattr(diffusers, self.pipelines[mode]).from_pipe(pipe)
                self._modes[mode].set_progress_bar_config(disable=True)
            return self._modes[mode]

    def release(self) -> None:
        """Drop the pipelines and free their memory; the next call loads them again."""
        with _LOADING:
            if self._pipe is None:
                return
            self._pipe = None
            self._modes = {}
        trim()

    # ---- generation ----------------------------------------------------------------------

    def prepare(self, params: GenerationParams) -> GenerationParams:
        """`params` with the model's defaults for unset sampler, steps and CFG, a concrete seed, and checked."""
        params = params.with_defaults(model_defaults(self)).with_seed()  # the WebUI's unless `default_params`
        self.check_params(params)
        denoised = int(params.steps * params.strength)  # diffusers' own count: it runs the last `denoised` steps
        if denoised < 1:
            raise InvalidInputError(
                f"{params.steps} step(s) at strength {params.strength:g} leave no denoising step (steps x strength "
                f"< 1); raise steps to at least {math.ceil(1 / params.strength)} or the strength")
        return params

    def inpaint(self, image: np.ndarray, mask: np.ndarray, params: GenerationParams,
                control: Mapping[str, np.ndarray] | None = None) -> Generated:
        """batch_size × batch_count images the size of `image` with `mask` repainted."""
        image = check_rgb(image)
        mask = check_mask(mask, image.shape)
        self.check_size(image.shape[1], image.shape[0])
        params = self.prepare(params)
        return self.run("inpaint", params, lambda pipe: self.inpaint_inputs(pipe, image, mask, params, control),
                        source=image)

    def txt2img(self, params: GenerationParams, width: int, height: int) -> Generated:
        """batch_size × batch_count width×height images of `params.prompt` (the "txt2img" mode)."""
        self.check_size(width, height)
        params = self.prepare(params)
        return self.run("txt2img", params, lambda pipe: self.txt2img_inputs(pipe, params, width, height))

    def img2img(self, image: np.ndarray, params: GenerationParams) -> Generated:
        """batch_size × batch_count redrawings of `image` at `params.strength` (the "img2img" mode)."""
        image = check_rgb(image)
        self.check_size(image.shape[1], image.shape[0])
        params = self.prepare(params)
        return self.run("img2img", params, lambda pipe: self.img2img_inputs(pipe, image, params), source=image)

    def run(self, mode: str, params: GenerationParams, inputs: Callable[[Any], dict[str, Any]], *,
            source: np.ndarray | None = None, threads: int | None = None) -> Generated:
        """The loop of every mode: one `mode` pipeline call per seed of `params` (already `prepare`d).

        `inputs(pipe)` gives the call's arguments besides prompt, steps, CFG and seed; it runs inside the
        pinned region, so control images computed there (HED) use the same threads. `source`: the image
        an output must differ from. `threads` overrides the generator's count for this call.
        """
        import torch

        seeds = params.image_seeds()
        with pinned(threads or self.threads) as used:
            pipe = self.pipeline(mode)
            for component in ("text_encoder", "unet"):  # before the sampler switch, which may attach LoRAs
                self.restore(component)
            lcm = self.set_sampler(pipe, params)
            call = {**self.encode(pipe, params), **inputs(pipe)}
            lean = self.low_memory and lcm is None  # the LCM-LoRA is attached to the loaded UNet
            if lean:
                self.drop("text_encoder")  # the call takes the embeddings
            images: list[np.ndarray] = []
            for index, seed in enumerate(seeds):
                self.restore("unet")
                out = pipe(**call, num_inference_steps=params.steps, guidance_scale=params.cfg_scale,
                           num_images_per_prompt=1, generator=torch.Generator("cpu").manual_seed(seed),
                           output_type="np", callback_on_step_end=_on_step_end(
                               index, len(seeds), (lambda: self.drop("unet")) if lean else None))
                images += [self.finish(x, source) for x in to_uint8(out.images, self.name)]
        if source is not None:
            changed(source, images, self.name)
        lcm_info = {"lcm_lora": {"path": str(lcm), "sha256": cached_sha256(lcm)}} if lcm else {}
        return Generated(images, seeds, used, {**self.model_info(), "lcm": lcm is not None, **lcm_info})
