"""Stable Diffusion inpainting through the stock diffusers pipelines.

`StableDiffusionInpaintPipeline` for SD 1.5 / 2 inpainting checkpoints (and ordinary 4-channel
checkpoints, which diffusers inpaints by latent blending), `StableDiffusionControlNetInpaintPipeline`
when ControlNets are asked for. Weights come from a diffusers folder (a model name resolved by
`editanything.models`, or a path) or a WebUI/Civitai single-file `.safetensors`/`.ckpt`, always with
`local_files_only=True`: nothing is downloaded here. The pipeline loads on first use and
`release()` frees it. CUDA runs fp16 with PyTorch's scaled-dot-product attention (diffusers' default
processor on torch 2); CPU runs fp32, and from fp16 files (as the released SD 1.5 inpainting has) keeps
the weights in fp16 and upcasts each layer as it runs (`upcast.py`: same pixels, half the memory).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import InvalidInputError, ModelNotFound, require
from ..memory import trim
from ..models.checkpoint import load_torch_state
from ..models.store import cached_sha256
from ..types import GenerationParams
from .base import (_LOADING, DiffusersGenerator, Lora, load_loras, loading, parse_lora, place, unet_in_channels,
                   unet_weights, weights_file)
from .lcm import SAMPLER as LCM_SAMPLER
from .prompts import encode_prompts
from .upcast import COMPONENTS as HALF_STORABLE, restore_half, stored_half, upcast_per_layer

CONTROLNET_MODELS = {"inpaint": "controlnet-inpaint", "canny": "controlnet-canny",
                     "lines": "controlnet-lineart", "seg": "controlnet-seg"}
NEEDS_CONTROL_IMAGE = ("seg",)  # the others derive their control image from the photo
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
CONFIGS = Path(__file__).resolve().parent / "configs"
BASE_MODEL = "sd15-inpainting"  # its folder holds the configs and tokenizer a single-file SD 1.x checkpoint lacks
CLIP_REPO = "openai/clip-vit-large-patch14"  # SD 1.x text encoder; diffusers looks for its configs in the HF cache
_UNET_CONV_IN = "model.diffusion_model.input_blocks.0.0.weight"


@dataclass(frozen=True)
class Embedding:
    path: Path
    token: str


@dataclass(frozen=True)
class _Source:
    name: str
    path: Path
    single_file: bool
    variant: str | None = None  # "fp16": the folder holds `*.fp16.safetensors` only (upcast on a CPU)


def _resolve_model(model: str | os.PathLike) -> _Source:
    from ..models import find_spec, resolve
    from ..models.variants import folder_variant

    spec = find_spec(model) if isinstance(model, str) else None
    if spec is not None:
        if spec.backend != "diffusion":
            raise InvalidInputError(f"model {model!r} is a {spec.kind}, not a Stable Diffusion checkpoint")
        found = resolve(model)
        return _Source(model, found.folder, False, variant=spec.loader.get("variant"))
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise InvalidInputError(f"{path} is a folder without model_index.json: not a diffusers pipeline folder")
        return _Source(path.name, path, False, variant=folder_variant(path))
    if path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise InvalidInputError(f"{path}: a checkpoint must be a .safetensors or .ckpt file or a diffusers folder")
        return _Source(path.stem, path, True)
    raise ModelNotFound(
        f"no Stable Diffusion model {str(model)!r}: not a known model name nor an existing file or folder")


def _resolve_controlnet(entry: str | tuple[str, str | os.PathLike]) -> tuple[str, Path]:
    kind, path = (entry, None) if isinstance(entry, str) else entry
    if kind not in CONTROLNET_MODELS:
        raise InvalidInputError(f"unknown ControlNet {kind!r}; choose one of: {', '.join(CONTROLNET_MODELS)}")
    if path is None:
        from ..models import resolve

        return kind, resolve(CONTROLNET_MODELS[kind]).folder
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise ModelNotFound(f"ControlNet {kind}: {path} is not a diffusers ControlNet folder (config.json missing)")
    return kind, path


def _checkpoint_in_channels(path: Path) -> int | None:
    """The UNet's input channels of an original-layout checkpoint (9 for inpainting models, 4 otherwise)."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return f.get_slice(_UNET_CONV_IN).get_shape()[1] if _UNET_CONV_IN in f.keys() else None
    sd = load_torch_state(path, "Stable Diffusion checkpoint", mmap=True)
    sd = sd.get("state_dict", sd)
    return sd[_UNET_CONV_IN].shape[1] if _UNET_CONV_IN in sd else None


class DiffusionGenerator(DiffusersGenerator):
    """Stable Diffusion inpainting at the size it is given (a multiple of 8; compose.py crops and resizes).

    model:        a model name of the registry ("sd15-inpainting", "sd2-inpainting"), a diffusers
                  folder, or a single-file `.safetensors`/`.ckpt`.
    config:       for a single file, a local diffusers folder with the matching configs and tokenizer
                  (default: the sd15-inpainting folder when present).
    original_config: for a single file, an original LDM yaml instead; the text encoder and tokenizer
                  then come from the local Hugging Face cache (openai/clip-vit-large-patch14).
    controlnets:  kinds among inpaint, canny, lines, seg, or (kind, folder) pairs.
    loras:        `Lora(path, scale)` (or "PATH:SCALE" strings); embeddings: `Embedding(path, token)`.
    threads:      torch's CPU threads while generating (default: the process's count). The last bits of
                  a CPU result depend on it; the recipe records it and replay uses it again.
    layerwise_upcast: on a CPU, fp16 files (a diffusers folder without LoRAs) keep their weights in
                  fp16, each layer upcast to fp32 as it runs: the pixels of upcasting them all at load,
                  with half the memory for weights and casts on every step. False upcasts at load.
    """

    # The diffusers pipelines `build` makes: plain, and with ControlNets (a subclass may run img2img instead).
    pipeline_class = "StableDiffusionInpaintPipeline"
    controlnet_pipeline_class = "StableDiffusionControlNetInpaintPipeline"
    pipelines = {"txt2img": "StableDiffusionPipeline", "img2img": "StableDiffusionImg2ImgPipeline"}

    def __init__(
        self,
        model: str | os.PathLike = "sd15-inpainting",
        *,
        controlnets: Sequence[str | tuple[str, str | os.PathLike]] = (),
        controlnet_scale: float | Sequence[float] = 1.0,
        loras: Sequence[Lora | str] = (),
        embeddings: Sequence[Embedding | tuple[str | os.PathLike, str]] = (),
        config: str | os.PathLike | None = None,
        original_config: str | os.PathLike | None = None,
        device: str | None = None,
        dtype: Any = None,
        cpu_offload: bool = False,
        threads: int | None = None,
        layerwise_upcast: bool = True,
    ):
        super().__init__(threads=threads)
        self.source = _resolve_model(model)
        self.controlnets = [_resolve_controlnet(c) for c in controlnets]
        n = len(self.controlnets)
        scales = [controlnet_scale] * n if isinstance(controlnet_scale, (int, float)) else list(controlnet_scale)
        if len(scales) != n:
            raise InvalidInputError(f"give one controlnet_scale or one per ControlNet ({n}); got {len(scales)}")
        self.controlnet_scales = [float(s) for s in scales]
        if not all(math.isfinite(s) for s in self.controlnet_scales):
            raise InvalidInputError(f"ControlNet scales must be finite numbers; got {self.controlnet_scales}")
        self.loras = [parse_lora(x) if isinstance(x, str) else x for x in loras]
        self.embeddings = [e if isinstance(e, Embedding) else Embedding(Path(e[0]), e[1]) for e in embeddings]
        for f in [*(x.path for x in self.loras), *(e.path for e in self.embeddings)]:
            if not Path(f).is_file():
                raise ModelNotFound(f"{f}: no such LoRA or embedding file")
        if config is not None and original_config is not None:
            raise InvalidInputError("give config (a diffusers folder) or original_config (a yaml), not both")
        self.config = Path(config) if config is not None else None
        self.original_config = Path(original_config) if original_config is not None else None
        self._device, self._dtype, self.cpu_offload = device, dtype, cpu_offload
        self.layerwise_upcast = bool(layerwise_upcast)
        self._full: set[str] = set()  # components upcast at load even so (the UNet once the LCM-LoRA is asked for)
        self._wrapped = False
        self._sha256: str | None = None

    @classmethod
    def from_pipeline(cls, pipe, name: str = "custom", controlnet_kinds: Sequence[str] = ()) -> "DiffusionGenerator":
        """Wrap an already built diffusers inpainting pipeline (its scheduler config is the base for samplers).

        For a ControlNet pipeline, `controlnet_kinds` names what each of its ControlNets expects.
        """
        self = cls.__new__(cls)
        DiffusersGenerator.__init__(self)
        self.source = _Source(name, Path(name), False)
        n = (len(pipe.controlnet.nets) if hasattr(pipe.controlnet, "nets") else 1) if hasattr(pipe, "controlnet") else 0
        if len(controlnet_kinds) != n or any(k not in CONTROLNET_MODELS for k in controlnet_kinds):
            raise InvalidInputError(f"this pipeline has {n} ControlNet(s): give as many controlnet_kinds "
                                    f"among {', '.join(CONTROLNET_MODELS)}; got {list(controlnet_kinds)}")
        self.controlnets = [(k, Path(name)) for k in controlnet_kinds]
        self.controlnet_scales = [1.0] * n
        self.loras, self.embeddings = [], []
        self.config = self.original_config = None
        self._device, self._dtype, self.cpu_offload = str(pipe.device), pipe.dtype, False
        self.layerwise_upcast, self._full = False, set()
        self._pipe, self._scheduler_config = pipe, dict(pipe.scheduler.config)
        self._wrapped, self._sha256 = True, None
        return self

    @property
    def name(self) -> str:
        return self.source.name

    def describe(self) -> str:
        return f"{self.name} ({self.note})" if self.note else self.name

    # ---- loading -------------------------------------------------------------------------

    def _single_file_kwargs(self) -> dict[str, Any]:
        if self.config is not None:
            return {"config": str(self.config)}
        if self.original_config is not None:
            return {"original_config": str(self.original_config)}
        from ..models import find_model

        base = find_model(BASE_MODEL)
        if base is not None:
            return {"config": str(base.folder)}
        channels = _checkpoint_in_channels(self.source.path)
        yaml = "v1-inpainting-inference.yaml" if channels == 9 else "v1-inference.yaml"
        return {"original_config": str(CONFIGS / yaml)}

    def _load_single_file(self, pipeline_cls, common: dict[str, Any]):
        kwargs = self._single_file_kwargs()
        if "config" in kwargs:
            # A 4-channel checkpoint read with an inpainting model's configs: build its UNet with 4 inputs.
            import json

            from diffusers import UNet2DConditionModel

            unet_config = json.loads((Path(kwargs["config"]) / "unet" / "config.json").read_text())
            channels = _checkpoint_in_channels(self.source.path)
            if channels is not None and channels != unet_config.get("in_channels"):
                kwargs["unet"] = UNet2DConditionModel.from_single_file(
                    str(self.source.path), config=kwargs["config"], subfolder="unet", in_channels=channels,
                    dtype=common["dtype"], local_files_only=True)
        try:
            if "original_config" in kwargs:
                # diffusers' legacy loader skips the tokenizer with transformers 5 tokenizer classes: pass it.
                from transformers import CLIPTokenizer

                kwargs["tokenizer"] = CLIPTokenizer.from_pretrained(CLIP_REPO, local_files_only=True)
            return pipeline_cls.from_single_file(str(self.source.path), **kwargs, **common)
        except (OSError, ValueError) as exc:
            if "config" in kwargs:
                raise
            raise ModelNotFound(
                f"{self.source.path.name}: loading with {Path(kwargs['original_config']).name} needs the configs and "
                f"tokenizer of {CLIP_REPO} in the local Hugging Face cache ({type(exc).__name__}); "
                f"pass config=<a diffusers SD folder> "
                f"or fetch the base model with: editanything models download {BASE_MODEL}"
            ) from exc

    def build(self):
        if self._wrapped:
            raise InvalidInputError(f"generator {self.name} wrapped a pipeline that was released; wrap it again")
        require("torch", "diffusion")
        diffusers = require("diffusers", "diffusion")
        from ..models import pick_device, pick_dtype

        device = pick_device(self._device)
        dtype = self._dtype or pick_dtype(device)
        common = dict(dtype=dtype, safety_checker=None, feature_extractor=None,
                      requires_safety_checker=False, local_files_only=True)
        cls = getattr(diffusers, self.pipeline_class)
        half = [c for c in HALF_STORABLE if self._half_stored(c)]
        with loading("Stable Diffusion model", self.name, self.source.path):
            if self.source.single_file:
                pipe = self._load_single_file(cls, common)
            else:
                if half:
                    import torch

                    common["dtype"] = {"default": dtype, **{c: torch.float16 for c in half}}
                pipe = cls.from_pretrained(str(self.source.path), variant=self.source.variant, **common)
                for component in half:
                    upcast_per_layer(getattr(pipe, component), component)
            if self.controlnets:
                from ..models.variants import model_variant

                nets = [diffusers.ControlNetModel.from_pretrained(str(p), dtype=dtype, variant=model_variant(p),
                                                                  local_files_only=True)
                        for _, p in self.controlnets]
                pipe = getattr(diffusers, self.controlnet_pipeline_class).from_pipe(
                    pipe, controlnet=nets if len(nets) > 1 else nets[0])
                for component in half:
                    restore_half(getattr(pipe, component))
            for emb in self.embeddings:
                pipe.load_textual_inversion(str(emb.path), token=emb.token)
            if self.loras:
                load_loras(pipe, self.loras)
        place(pipe, device, self.cpu_offload)
        self.weights_sha256()  # once, at load, not on every recipe
        return pipe

    def _reload_folder(self, component: str) -> Path | None:
        """The folder `component` loads from again: a diffusers folder's, unchanged by LoRAs (or, for the
        text encoder, embeddings) and not under CPU offload's hooks; None where it cannot be freed."""
        if self._wrapped or self.source.single_file or self.loras or self.cpu_offload:
            return None
        if component == "text_encoder" and self.embeddings:
            return None
        folder = self.source.path / component
        return folder if (folder / "config.json").is_file() else None

    def _half_stored(self, component: str) -> bool:
        """Whether `component` loads keeping its fp16 file's weights, upcast per layer as it runs (upcast.py):
        on a CPU computing in fp32, from fp16 files that loads can read again as they are."""
        if not (self.layerwise_upcast and component in HALF_STORABLE and component not in self._full
                and self.source.variant == "fp16" and self._reload_folder(component) is not None):
            return False
        import torch

        from ..models import pick_device, pick_dtype

        device = pick_device(self._device)
        return device == "cpu" and (self._dtype or pick_dtype(device)) == torch.float32

    def _load_component(self, component: str, folder: Path) -> Any:
        """One component from its folder, as `build` loads it (placed on the device, eval mode)."""
        import json

        import torch

        from ..models import pick_device, pick_dtype

        library, class_name = json.loads((self.source.path / "model_index.json").read_text(encoding="utf-8"))[component]
        device = pick_device(self._device)
        half = self._half_stored(component)
        with loading(component.replace("_", " ") + " of", self.name, folder):
            module = getattr(require(library, "diffusion"), class_name).from_pretrained(
                str(folder), dtype=torch.float16 if half else self._dtype or pick_dtype(device),
                variant=self.source.variant, local_files_only=True)
        if half:
            upcast_per_layer(module, component)
        return module.to(device).eval()

    def _set_component(self, component: str, module: Any) -> None:
        for pipe in (self._pipe, *self._modes.values()):  # the other modes' pipelines share it
            pipe.register_modules(**{component: module})

    def drop(self, component: str) -> None:
        with _LOADING:
            if self._pipe is None or getattr(self._pipe, component) is None or self._reload_folder(component) is None:
                return
            self._set_component(component, None)
        trim()

    def restore(self, component: str) -> None:
        with _LOADING:
            if self._pipe is None or getattr(self._pipe, component) is not None:
                return
            folder = self._reload_folder(component)
            if folder is None:
                return
            self._set_component(component, self._load_component(component, folder))

    def set_sampler(self, pipe: Any, params: GenerationParams) -> Path | None:
        if params.sampler == LCM_SAMPLER and stored_half(pipe.unet):
            # PEFT makes the LCM-LoRA's layers in the dtype of the weights they wrap: load the UNet's as fp32
            with _LOADING:
                self._full.add("unet")
                self.drop("unet")
                self.restore("unet")
        return super().set_sampler(pipe, params)

    # ---- generation ----------------------------------------------------------------------

    def _control_images(self, image: np.ndarray, mask: np.ndarray, control: Mapping[str, np.ndarray]) -> list:
        import cv2
        import torch
        from PIL import Image

        out = []
        for kind, _ in self.controlnets:
            given = control.get(kind)
            if given is not None:
                given = np.asarray(given)
                if given.shape[:2] != image.shape[:2]:
                    raise InvalidInputError(
                        f"the {kind} control image must be {image.shape[:2]} like the image; got {given.shape[:2]}")
                out.append(Image.fromarray(given.astype(np.uint8)).convert("RGB"))
            elif kind == "inpaint":
                # ControlNet 1.1 inpaint: the image in [0, 1] with the pixels to fill set to -1.
                cond = image.astype(np.float32) / 255.0
                cond[mask] = -1.0
                out.append(torch.from_numpy(cond.transpose(2, 0, 1).copy())[None])
            elif kind == "canny":
                edges = cv2.Canny(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 100, 200)
                out.append(Image.fromarray(edges).convert("RGB"))
            elif kind == "lines":
                from ..edges.hed import hed_lines

                # HED's line art is dark lines on white; the line-art ControlNet wants white lines on black.
                # PyTorch's convolutions, as ever: the recipes of these edits and sketches record no runtime.
                lines = hed_lines(image, runtime="torch")
                out.append(Image.fromarray(255 - lines).convert("RGB"))
            else:
                raise InvalidInputError(
                    f"the {kind} ControlNet needs a control image: pass control={{'{kind}': array}}")
        return out

    def encode(self, pipe: Any, params: GenerationParams) -> dict[str, Any]:
        prompt_embeds, negative_embeds = encode_prompts(pipe, params.prompt, params.negative_prompt)
        return {"prompt_embeds": prompt_embeds, "negative_prompt_embeds": negative_embeds}

    def control_inputs(self, image: np.ndarray, mask: np.ndarray, control: Mapping[str, np.ndarray] | None,
                       scales: Sequence[float] | None = None) -> dict[str, Any]:
        """The ControlNets' call arguments (none without ControlNets)."""
        if not self.controlnets:
            return {}
        images = self._control_images(image, mask, control or {})
        scales = list(scales if scales is not None else self.controlnet_scales)
        return {"control_image": images if len(images) > 1 else images[0],
                "controlnet_conditioning_scale": scales if len(scales) > 1 else scales[0]}

    def inpaint_inputs(self, pipe: Any, image: np.ndarray, mask: np.ndarray, params: GenerationParams,
                       control: Mapping[str, np.ndarray] | None) -> dict[str, Any]:
        return {**super().inpaint_inputs(pipe, image, mask, params, None),
                **self.control_inputs(image, mask, control)}

    @property
    def text_to_image(self) -> bool:
        """Whether txt2img and img2img can run: a 4-channel UNet and no ControlNets (an inpainting UNet
        takes the image and mask as extra input channels)."""
        if self.controlnets:
            return False
        if self._wrapped:
            return self._pipe.unet.config.in_channels == 4
        if self.source.single_file:
            return _checkpoint_in_channels(self.source.path) in (4, None)
        return unet_in_channels(self.source.path) in (4, None)

    def txt2img_inputs(self, pipe: Any, params: GenerationParams, width: int, height: int) -> dict[str, Any]:
        self._check_text_to_image()
        return super().txt2img_inputs(pipe, params, width, height)

    def img2img_inputs(self, pipe: Any, image: np.ndarray, params: GenerationParams) -> dict[str, Any]:
        self._check_text_to_image()
        return super().img2img_inputs(pipe, image, params)

    def _check_text_to_image(self) -> None:
        if self.controlnets:
            raise InvalidInputError(f"{self.name}: generate runs without ControlNets; leave them out")
        if not self.text_to_image:
            raise InvalidInputError(f"{self.name} is an inpainting model: generating from a prompt needs a "
                                    "text-to-image one such as sd15 (editanything models download sd15)")

    def weights_sha256(self) -> str | None:
        """The sha256 of the weights that run (the single file, or a folder's UNet), hashed from disk once
        and cached by size and mtime: never the manifest's pin, which a damaged file does not have."""
        if self._sha256 is None and not self._wrapped:
            weights = self.source.path if self.source.single_file else unet_weights(self.source.path)
            self._sha256 = cached_sha256(weights) if weights is not None else None
        return self._sha256

    def model_info(self) -> dict[str, Any]:
        """What the recipe records: model name, file, sha256 (and the WebUI's 10-character hash), add-ons."""
        sha = self.weights_sha256()
        return {
            "name": self.name,
            "file": str(self.source.path),
            "format": "single-file" if self.source.single_file else "diffusers",
            "family": "sd",
            "sha256": sha,
            "hash": sha[:10] if sha else None,
            "controlnets": [{"kind": k, "path": str(p), "scale": s, "sha256": _folder_sha256(p)}
                            for (k, p), s in zip(self.controlnets, self.controlnet_scales)],
            "loras": [{"path": str(x.path), "scale": x.scale, "sha256": cached_sha256(x.path)} for x in self.loras],
            "embeddings": [{"path": str(e.path), "token": e.token, "sha256": cached_sha256(e.path)}
                           for e in self.embeddings],
        }


def _folder_sha256(folder: Path) -> str | None:
    """A ControlNet folder's weights' sha256 (None for a wrapped pipeline's, which has no folder)."""
    weights = weights_file(Path(folder))
    return cached_sha256(weights) if weights is not None else None
