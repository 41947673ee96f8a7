"""`/sdapi/v1/*`: the WebUI's routes over the Editor. img2img with a mask is an edit of the masked area."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from ..errors import InvalidInputError, ModelNotFound
from ..generation import GenerateRequest
from ..generate import sampler_names
from ..types import wrap_seed
from ..imageio import decode_png_text
from ..models import download_command, find_model, list_models
from ..recipe import PARAMETERS_KEY, RECIPE_KEY
from .images import image_bytes, json_with_images, png_b64_bytes, read_b64_image, read_b64_mask
from .pnginfo import parse_parameters
from .webui import (SCHEDULERS, Img2ImgRequest, Txt2ImgRequest, check_fill, check_model_override, edit_mask,
                    generation_params, mask_blur, refuse_unsupported)

UPLOAD_NAME = "init_image.png"  # what the recipe records as the photo's name (replay --image finds it)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PngInfoRequest(_Strict):
    image: str


class InterrogateRequest(_Strict):
    image: str
    model: str = "clip"


def router(api) -> APIRouter:
    r = APIRouter(prefix="/sdapi/v1", tags=["sdapi"], route_class=api.route_class)

    @r.post("/img2img")
    def img2img(req: Img2ImgRequest) -> dict:
        """With `mask`: regenerate the masked area from the prompt; every pixel outside it is kept exactly
        (`inpaint_full_res`: a crop around the mask; else the whole photo). Without: the picture redrawn at
        `width` × `height` (`Editor.generate`, image to image). Each PNG carries its recipe."""
        refuse_unsupported(req)
        if not req.init_images or len(req.init_images) != 1:
            raise InvalidInputError(f"init_images must hold one image; got {len(req.init_images or [])}")
        image = read_b64_image(req.init_images[0], "init_images[0]", api.config.max_pixels)
        if req.mask is None:
            params = generation_params(req, api.config.max_images, api.config.styles, exact_size=True)
            with api.slots.run("generation"):
                check_model_override(req, api.model_name())
                result = api.editor.generate(GenerateRequest(params, image=image), name=UPLOAD_NAME)
            return _answer(req, result)
        params = generation_params(req, api.config.max_images, api.config.styles)
        check_fill(req, params.strength)
        mask = edit_mask(read_b64_mask(req.mask, "mask", api.config.max_pixels), image, req.inpainting_mask_invert)
        request = api.edit_request(mask, params, feather=mask_blur(req), full_image=not req.inpaint_full_res)
        with api.slots.run("generation"):
            check_model_override(req, api.model_name())
            result = api.editor.edit(image, request, name=UPLOAD_NAME)
        return _answer(req, result)

    @r.post("/txt2img")
    def txt2img(req: Txt2ImgRequest) -> dict:
        """A picture from the prompt at `width` × `height` (`Editor.generate`: the text-to-image model)."""
        refuse_unsupported(req)
        params = generation_params(req, api.config.max_images, api.config.styles, exact_size=True)
        with api.slots.run("generation"):
            check_model_override(req, api.model_name())
            result = api.editor.generate(GenerateRequest(params))
        return _answer(req, result)

    @r.get("/options")
    def get_options() -> dict:
        with api.slots.run("generation"):
            return {"sd_model_checkpoint": api.model_name(), "samples_format": "png"}

    @r.post("/options")
    def set_options(options: dict[str, Any]) -> None:
        """Only `sd_model_checkpoint` (a title from /sd-models) is taken: it switches the generator."""
        unknown = [k for k in options if k != "sd_model_checkpoint"]
        if unknown:
            raise InvalidInputError(f"option {unknown[0]!r} is not supported; the only option taken is "
                                    "sd_model_checkpoint")
        if "sd_model_checkpoint" in options:
            name = options["sd_model_checkpoint"]
            titles = [m["title"] for m in sd_models()]
            if name not in titles and name != api.model_name():  # restating the model in use is no switch
                raise InvalidInputError(f"sd_model_checkpoint {name!r} is not on disk here; choose one of: "
                                        f"{', '.join(titles) or 'none (download one: ' + download_command('sd15-inpainting') + ')'}")
            with api.slots.run("generation"):
                if name != api.model_name():
                    api.editor.use_generator(name)

    @r.get("/samplers")
    def samplers() -> list[dict]:
        return [{"name": n, "aliases": [], "options": {}} for n in sampler_names()]

    @r.get("/schedulers")
    def schedulers() -> list[dict]:
        return [{"name": n, "label": label, "aliases": None, "default_rho": -1, "need_inner_model": False}
                for n, label in SCHEDULERS.items()]

    @r.get("/sd-models")
    def sd_models() -> list[dict]:
        """The generators on disk (the hashes are the catalogue's pins)."""
        out = []
        for spec in list_models("generator"):
            found = find_model(spec.name)
            if found is None:
                continue
            sha = spec.files[0].sha256 if spec.files else None
            out.append({"title": spec.name, "model_name": spec.name, "hash": sha[:10] if sha else None,
                        "sha256": sha, "filename": str(found.folder),
                        "config": None})
        return out

    @r.get("/loras")
    def loras() -> list[dict]:
        with api.slots.run("generation"):
            info = api.editor.generator.model_info()
        return [{"name": _stem(x["path"]), "alias": _stem(x["path"]), "path": x["path"],
                 "metadata": {"scale": x.get("scale"), "sha256": x.get("sha256")}} for x in info.get("loras") or []]

    @r.get("/embeddings")
    def embeddings() -> dict:
        with api.slots.run("generation"):
            info = api.editor.generator.model_info()
        loaded = {e["token"]: {"step": None, "sd_checkpoint": None, "sd_checkpoint_name": None, "shape": None,
                               "vectors": None, "path": e["path"]} for e in info.get("embeddings") or []}
        return {"loaded": loaded, "skipped": {}}

    @r.get("/prompt-styles")
    def prompt_styles() -> list[dict]:
        """The saved styles (`--styles-file`) that a request's `styles` may name."""
        return [{"name": s.name, "prompt": s.prompt, "negative_prompt": s.negative_prompt}
                for s in api.config.styles.values()]

    @r.get("/scripts")
    def scripts() -> dict:
        return {"txt2img": [], "img2img": []}

    @r.post("/png-info")
    def png_info(req: PngInfoRequest) -> dict:
        """The WebUI parameters (`info`, parsed in `parameters`) and every other text chunk, our recipe
        (`items.editanything`, JSON) among them."""
        text = decode_png_text(image_bytes(req.image, "image"), "image")
        info = text.get(PARAMETERS_KEY, "")
        items = {k: v for k, v in text.items() if k != PARAMETERS_KEY}
        return {"info": info, "items": items, "parameters": parse_parameters(info) if info else {}}

    @r.post("/interrogate")
    def interrogate(req: InterrogateRequest) -> dict:
        """A caption of the image by the server's captioner (`model` "clip" is taken to mean it)."""
        image = read_b64_image(req.image, "image", api.config.max_pixels)
        with api.slots.run("generation"):
            captioner = api.editor.captioner
            if captioner is None:
                from ..caption import captioner_download

                raise ModelNotFound(f"no captioner on disk; fetch one with: {captioner_download()}")
            if req.model not in ("clip", getattr(captioner, "name", "")):
                raise InvalidInputError(f"interrogate model {req.model!r} is not served here; send 'clip' (this "
                                        f"server captions with {getattr(captioner, 'name', 'its captioner')})")
            return {"caption": captioner.caption(image)}

    @r.get("/progress")
    def progress(skip_current_image: Optional[bool] = False) -> dict:
        return api.slots.progress()

    @r.post("/interrupt")
    def interrupt() -> dict:
        api.slots.interrupt()
        return {}

    return r


def _stem(path: str) -> str:
    return Path(path).stem


def _answer(req: Img2ImgRequest | Txt2ImgRequest, result) -> Response:
    """`{images, parameters, info}` as the WebUI answers, `info` a JSON string."""
    recipe = result.recipe
    gen = recipe.parameters["generation"]
    n = len(result.images)
    texts = [result.png_text(i) for i in range(n)]
    seeds = [wrap_seed(recipe.seed + i) for i in range(n)] if recipe.seed is not None else []
    size = recipe.parameters.get("generation_size") or [req.width, req.height]
    model = recipe.models.get("generator", {})
    info = {
        "prompt": gen["prompt"], "all_prompts": [gen["prompt"]] * n, "negative_prompt": gen["negative_prompt"],
        "all_negative_prompts": [gen["negative_prompt"]] * n, "seed": recipe.seed, "all_seeds": seeds,
        "subseed": -1, "all_subseeds": [-1] * n, "subseed_strength": 0, "width": size[0], "height": size[1],
        "sampler_name": gen["sampler"], "cfg_scale": gen["cfg_scale"], "steps": gen["steps"],
        "batch_size": gen["batch_size"], "restore_faces": False, "face_restoration_model": None,
        "sd_model_name": model.get("name"), "sd_model_hash": model.get("hash"), "seed_resize_from_w": -1,
        "seed_resize_from_h": -1, "denoising_strength": gen["strength"], "extra_generation_params": {},
        "index_of_first_image": 0, "infotexts": [t[PARAMETERS_KEY] for t in texts], "styles": req.styles or [],
        "job_timestamp": time.strftime("%Y%m%d%H%M%S"), "clip_skip": 1,
        "is_using_inpainting_conditioning": recipe.operation.startswith("edit:"), "version": recipe.versions.get("editanything", ""),
    }
    parameters = req.model_dump()
    if isinstance(req, Img2ImgRequest):
        parameters.update(init_images=None, mask=None)
    images = [png_b64_bytes(img, {PARAMETERS_KEY: t[PARAMETERS_KEY], RECIPE_KEY: t[RECIPE_KEY]})
              for img, t in zip(result.images, texts)] if req.send_images else []
    return Response(json_with_images(images, {"parameters": parameters, "info": json.dumps(info)}),
                    media_type="application/json")
