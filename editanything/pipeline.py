"""The Editor: select → segment → (caption) → generate → compose, with a recipe for every output.

    editor = Editor()                                   # best backends on disk, weight-free otherwise
    result = editor.edit(photo, EditRequest(mode="remove", selection=Prompt(boxes=[(40, 60, 200, 220)])))
    result.save("out.png")                              # PNG with WebUI parameters + JSON recipe

Backends are built lazily by name through their registries (or passed as instances), so an
Editor costs nothing until it is used, and `release()` frees the deep models again.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import compose, generation, masks
from .caption import captioner_download
from .check import Look, look_again
from .errors import BadOutput, EditAnythingError, InvalidInputError, ModelNotFound, NothingFound, UnchangedOutput
from .generate import ClassicalGenerator, GenerationParams, best_remover, get_generator, model_defaults, next_remover
from .generate.recolor import RecolorGenerator, parse_color
from .generation import GenerateRequest, GenerateResult
from .imageio import write_image
from .matte import Matte, check_band, compute_matte, get_matter
from .memory import low_memory_default, trim
from .models import download_command
from .recipe import array_sha256, backend_info, encode_mask, library_versions, png_text
from .storage import is_uri, location
from .types import Detections, Prompt, Recipe, wrap_seed

MODES = ("replace", "remove", "background", "recolor")
MATTE_MODES = ("background", "recolor")
# A prompt that asks the inpainting model for "more of the surroundings", as the WebUI's users do.
REMOVE_PROMPT = "empty background, seamless continuation of the surroundings"
REMOVE_NEGATIVE = "person, animal, object, text, watermark, logo, blurry, artifacts"


@dataclass
class EditRequest:
    """One edit. `selection` (text, clicks, boxes) or `mask` says where; `mode` says what.

    replace:    regenerate the selection from `params.prompt` (or a caption when a captioner is set)
    remove:     fill the selection with its surroundings
    background: regenerate everything but the selection from `params.prompt`
    recolor:    give the selection `color` (a name or #rrggbb), keeping its shading; no model
    `prompt_for` maps a phrase to its own prompt ("dog" → "a corgi") for per-instance edits.
    `control` holds full-size control images for ControlNets that can't derive theirs (e.g. "seg");
    `control_files` says which files they came from, for the recipe.
    `steps` gives each generation its own mask and prompt (what a per-instance edit did; replay uses it).
    `expansion` records how `params.prompt` was written from the user's words (`prompting.Expansion.to_dict()`):
    the recipe keeps it, and replay reuses the prompt, never the expander.
    `params` whose sampler, steps or cfg_scale are None take the generator's defaults (see
    `Generator.default_params`); the recipe records the values used.
    `check` (remove, replace): after the edit the detector looks again in the edited region; a remove
    passes when it no longer finds this phrase there, a replace when it does. A failed look is retried
    up to `retries` times, with the next seed (a sampler) or the next remover (`generate.REMOVAL_CHAIN`).
    `matte` (background, recolor): soft edges from an alpha matte of the selection (see `matte`) instead of
    grow and feather at the subject's edge; `matte_band` is the unknown band's width (None: by object size).
    """

    mode: str = "replace"
    selection: Prompt = field(default_factory=Prompt)
    mask: np.ndarray | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    keep: list[int] | None = None
    keep_phrases: list[str] | None = None
    prompt_for: dict[str, str] = field(default_factory=dict)
    grow: float = 8.0
    feather: float = 8.0
    full_image: bool = False
    color: str | None = None
    control: dict[str, np.ndarray] = field(default_factory=dict)
    control_files: dict[str, str] = field(default_factory=dict)
    steps: list[tuple[np.ndarray, str]] = field(default_factory=list)
    expansion: dict[str, Any] | None = None
    matte: bool = False
    matte_band: float | None = None
    check: str | None = None
    retries: int = 2

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidInputError(f"unknown edit mode {self.mode!r}; choose one of: {', '.join(MODES)}")
        if self.mode == "recolor" and not self.color:
            raise InvalidInputError("recolor needs a colour (a name such as red, or #rrggbb)")
        if self.mode == "recolor":
            parse_color(self.color)  # a bad colour fails here, before anything loads
        if self.mask is None and self.selection.is_empty():
            raise InvalidInputError("say what to edit: a text selection, clicks, boxes or a mask")
        if any(not str(k).strip() or not str(v).strip() for k, v in self.prompt_for.items()):
            raise InvalidInputError(f"--prompt-for needs a phrase and a prompt for each entry, e.g. "
                                    f"{{'dog': 'a corgi'}}; got {self.prompt_for!r}")
        if self.prompt_for and self.mode != "replace":
            raise InvalidInputError(f"--prompt-for gives each selected instance its own replacement; it does not "
                                    f"combine with {self.mode}")
        if self.mask is None and self.selection.text and (self.selection.points or self.selection.boxes):
            raise InvalidInputError("select by text or by clicks/boxes, not both in one edit "
                                    "(segment by text first, then refine with clicks in the UI)")
        if self.matte and self.mode not in MATTE_MODES:
            raise InvalidInputError(f"--matte softens the edge of a kept subject against what replaces its "
                                    f"surroundings; use it with --background or --recolor, not {self.mode}")
        if self.matte_band is not None and not self.matte:
            raise InvalidInputError("--matte-band sets the width of --matte's band; add --matte")
        self.matte_band = check_band(self.matte_band)
        if self.check is not None and (not isinstance(self.check, str) or not self.check.strip()):
            raise InvalidInputError(f"the check's phrase must be a non-empty string; got {self.check!r}")
        if self.check is not None and self.mode not in ("remove", "replace"):
            raise InvalidInputError(f"a check looks for what a remove took away or a replace put in; "
                                    f"not for {self.mode}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or not 0 <= self.retries <= 20:
            raise InvalidInputError(f"--retries must be an int in 0..20; got {self.retries!r}")
        if not (math.isfinite(self.grow) and math.isfinite(self.feather)) or self.grow < 0 or self.feather < 0:
            raise InvalidInputError(f"grow and feather must be finite numbers >= 0 pixels; "
                                    f"got {self.grow}, {self.feather}")


@dataclass
class EditResult:
    """The edited images, the area handed to the generator (`mask`), the selection, the recipe, with
    `EditRequest.matte` the selection's alpha matte, and `notes`: what the edit left out, in one line each
    (a --prompt-for phrase this photo lacks)."""

    images: list[np.ndarray]
    mask: np.ndarray
    detections: Detections
    recipe: Recipe
    matte: Matte | None = None
    notes: list[str] = field(default_factory=list)
    check: Look | None = None

    @property
    def failed_check(self) -> bool:
        return self.check is not None and not self.check.passed

    def png_text(self, index: int = 0) -> dict[str, str]:
        return png_text(self.recipe, index)

    def save(self, path: str | Path, index: int = 0, *, inputs: tuple[str | Path, ...] = ()) -> Path:
        """Write image `index` as PNG with its WebUI parameters and recipe, atomically (`path` may be a URI)."""
        path = location(path)
        if path.suffix.lower() != ".png":
            raise InvalidInputError(f"{path}: edits are saved as .png so the recipe travels with the image")
        return write_image(path, self.images[index], text=self.png_text(index), inputs=inputs, fast=False)


class Editor:
    """Runs edits with lazily built backends: names from the registries ("auto" = best on disk) or instances.

    `remover` does *remove*: "auto" is the best learned remover on disk (LaMa, then MI-GAN, else OpenCV's
    Telea fill) when the generator is "auto" too, else the generator itself (a model the caller chose is
    used for every mode).

    `low_memory`: once an edit's masks are computed, release the detector and segmenter before the
    generator loads, so their weights and cached embeddings never share memory with Stable Diffusion's
    (they load again on the next selection), and have a generator built by name free its text encoder
    once the prompt is encoded and its UNet before the VAE decodes (loaded again when next needed). None (the
    default) decides by the memory available now against the size of the models it would build
    (`memory.low_memory_default`). Either way the pixels are the same.
    """

    def __init__(self, *, detector: Any = "auto", segmenter: Any = "auto", generator: Any = "auto",
                 captioner: Any = None, detector_options: dict | None = None, segmenter_options: dict | None = None,
                 generator_options: dict | None = None, low_memory: bool | None = None, remover: Any = "auto",
                 matter: Any = "auto") -> None:
        if detector == "auto" and segmenter == "sam3":
            detector = "sam3"  # SAM 3 answers a phrase itself: every instance's mask in one model
        if _is_auto(remover) and not (_is_auto(generator) and not generator_options):
            remover = None  # the generator the caller chose
        self._specs = {"detector": detector, "segmenter": segmenter, "generator": generator, "captioner": captioner,
                       "remover": remover, "matter": matter}
        self._options = {"detector": detector_options or {}, "segmenter": segmenter_options or {},
                         "generator": generator_options or {}, "captioner": {}, "remover": {}, "matter": {}}
        self._built: dict[str, Any] = {}
        self._building: dict[str, threading.Lock] = {}
        self._building_lock = threading.Lock()
        self.low_memory = low_memory_default(needs=self._weights_on_disk) if low_memory is None else bool(low_memory)

    def _weights_on_disk(self) -> int | None:
        """Bytes on disk of the detector, segmenter and generator this editor builds ("auto": the ones it would
        pick), found without loading them; None when one was passed in built."""
        from .models import bytes_on_disk

        total = 0
        for kind in ("detector", "segmenter", "generator"):
            spec = self._specs[kind]
            if spec is not None and not isinstance(spec, (str, Path)):
                return None
            name = _auto_pick(kind, self._options[kind]) if _is_auto(spec) else spec
            total += bytes_on_disk(name) if name else 0
        return total

    def _backend(self, kind: str) -> Any:
        spec = self._specs[kind]
        if spec is None:
            return None
        if not isinstance(spec, (str, Path)):
            return self._built.setdefault(kind, spec)  # the caller's own: released with the rest
        return self._build_once(kind, lambda: _BUILDERS[kind](spec, **self._options[kind]))

    def _build_once(self, key: str, build) -> Any:
        """`self._built[key]`, built by `build()` the first time. One build per key even when two UI sessions
        ask at once (a second copy of a model would double its memory); keys build independently."""
        if key in self._built:
            return self._built[key]
        with self._building_lock:
            lock = self._building.setdefault(key, threading.Lock())
        with lock:
            if key not in self._built:
                built = build()
                if self.low_memory and hasattr(built, "low_memory"):
                    built.low_memory = True
                self._built[key] = built
            return self._built[key]

    @property
    def detector(self):
        return self._backend("detector")

    @property
    def segmenter(self):
        return self._backend("segmenter")

    @property
    def generator(self):
        return self._backend("generator")

    @property
    def text_generator(self):
        """What `generate` runs: the generator the caller chose, or for "auto" the best text-to-image model
        on disk for the device (FLUX.2 klein, SDXL base, SD 1.5; not the inpainting models `edit` picks)."""
        if not _is_auto(self._specs["generator"]):
            return self.generator
        def build():
            from .generate.auto import pick_text

            name, why = pick_text(with_options=bool(self._options["generator"]))
            built = get_generator(name, **self._options["generator"])
            built.note = why
            return built

        return self._build_once("text_generator", build)

    @property
    def captioner(self):
        return self._backend("captioner")

    @property
    def matter(self):
        """The alpha matting backend of `EditRequest.matte` (weight-free pymatting by default)."""
        return self._backend("matter")

    @property
    def remover(self):
        """What *remove* runs: the remover (auto: LaMa, MI-GAN or Telea), or the generator the caller chose."""
        return self._backend("remover") or self.generator

    def describe(self, stages: tuple[str, ...] = ("segmenter", "detector", "generator", "captioner")) -> dict[str, str]:
        """Which backend each of `stages` uses, in words. Builds them (deep ones load their weights)."""
        out = {}
        for kind in stages:
            try:
                backend = self._backend(kind)
            except EditAnythingError as exc:
                out[kind] = f"unavailable ({exc})"
                continue
            if backend is None:
                out[kind] = "none"
            else:
                out[kind] = backend.describe() if hasattr(backend, "describe") else backend.name
        if "generator" in stages:
            out["remover"] = self._describe_remover(out.get("generator", ""))
        return out

    def _describe_remover(self, generator: str) -> str:
        try:
            remover = self._backend("remover")
        except EditAnythingError as exc:
            return f"unavailable ({exc})"
        if remover is not None:
            return remover.describe()
        return f"the generator: {generator}"

    def use_generator(self, generator: Any, **options: Any) -> None:
        """Generate with `generator` (a name or an instance) from the next edit on; the old one is freed.

        A generator chosen by name also does *remove*, as when it is given to the constructor."""
        for kind in ("generator", "remover", "text_generator"):
            old = self._built.pop(kind, None)
            if hasattr(old, "release"):
                old.release()
        self._specs["generator"], self._options["generator"] = generator, options
        if not (_is_auto(generator) and not options):
            self._specs["remover"] = None

    def release(self) -> None:
        """Free the deep models; they load again on next use."""
        for backend in self._built.values():
            if hasattr(backend, "release"):
                backend.release()
        self._built.clear()
        trim()

    @staticmethod
    def check_generator(mode: str, generator: Any) -> None:
        """Replace and background paint from a prompt: OpenCV's fill can't, so say what to fetch."""
        if mode in ("replace", "background") and isinstance(generator, ClassicalGenerator):
            raise ModelNotFound(
                f"{mode} paints new content from a prompt and needs Stable Diffusion "
                f"(OpenCV's fill can only remove); fetch it with: {download_command('sd15-inpainting')}")

    def _release_selection(self) -> None:
        """Drop the detector and segmenter (built again on next use) and collect their memory now."""
        for kind in ("detector", "segmenter"):
            backend = self._built.pop(kind, None)
            if hasattr(backend, "release"):
                backend.release()
        trim()

    def select(self, image: np.ndarray, selection: Prompt, *, keep: list[int] | None = None,
               keep_phrases: list[str] | None = None, min_score: float | None = None) -> Detections:
        """Masks for what the user meant: text → detector boxes → segmenter, or clicks/boxes → segmenter."""
        selection.check_inside(image.shape)
        if selection.text:
            found = self.detector.detect(image, selection.text)
            found = found.keep(indices=keep, phrases=keep_phrases, min_score=min_score)
            if not len(found):
                raise NothingFound(f"no detection of {selection.text!r} is left after --keep/--keep-phrase")
            if found.masks is not None:  # the detector segments too (SAM 3)
                return found
            segmented = self.segmenter.segment(image, Prompt(boxes=[tuple(b) for b in found.xyxy.tolist()]))
            return Detections(found.xyxy, found.scores, found.phrases, segmented.masks)
        detections = self.segmenter.segment(image, selection)
        detections = detections.keep(indices=keep, phrases=keep_phrases, min_score=min_score)
        if not len(detections) or not detections.union_mask().any():
            raise NothingFound("the clicks/boxes selected nothing; click inside the object or draw a larger box")
        return detections

    def edit(self, image: np.ndarray, request: EditRequest, *, source: str | None = None,
             name: str | None = None) -> EditResult:
        """Run one edit; pixels outside the grown selection stay bit-identical to `image`.

        The recipe records where the photo is: `source` (a path or URI), or, for a photo with no path
        worth recording (an upload), only its file `name`; replay looks for that beside the result."""
        if request.mask is not None:
            mask = np.asarray(request.mask, bool)
            if mask.shape != image.shape[:2]:
                raise InvalidInputError(f"the mask is {mask.shape[1]}x{mask.shape[0]}, the image {image.shape[1]}x{image.shape[0]}; they must match")
            detections = Detections.from_masks(mask[None], [1.0], ["mask"])
        else:
            detections = self.select(image, request.selection, keep=request.keep, keep_phrases=request.keep_phrases)
            mask = detections.union_mask()
        # Named before a low-memory release, so that writing the recipe does not load them again.
        selection_models = {} if request.mask is not None else self._selection_models(request.selection)
        if self.low_memory:
            self._release_selection()
        if not mask.any():
            raise NothingFound("the mask is empty: there is nothing to edit")
        generator = (RecolorGenerator(request.color) if request.mode == "recolor"
                     else self.remover if request.mode == "remove" else self.generator)
        self.check_generator(request.mode, generator)
        if hasattr(generator, "for_edit"):  # hosted backends bind to the edit's mode and selection
            generator = generator.for_edit(request)
        # a model without a negative prompt (step-distilled FLUX.2 klein) is not handed remove's default one
        params = self._prepare_params(image, mask, request, generator)
        matte = compute_matte(image, mask, self.matter, band=request.matte_band) if request.matte else None
        origin = _origin(source, name)

        def attempt(generator: Any, params: GenerationParams) -> EditResult:
            return self._generate(image, mask, detections, request, generator, params, matte, origin,
                                  selection_models)

        result = attempt(generator, params)
        if request.check is None:
            return result
        return self._checked(image, mask, request, result, generator, params, attempt)

    def _generate(self, image, mask, detections, request, generator, params, matte, origin,
                  selection_models) -> EditResult:
        """One generation of the edit (every instance step, every image of the batch) and its recipe."""
        target, grow = _edit_area(mask, request, matte)
        feather = 0.0 if matte is not None else request.feather  # the matte's alpha is the blend at the edge
        mode = "full" if request.full_image else "crop"
        steps = self._instance_steps(detections, target, request, params)
        images, runs = [image], []
        try:
            for step_mask, step_params in steps:
                edits = [compose.edit_region(img, step_mask, generator, _nth(step_params, i, len(images)),
                                             grow_px=grow, feather_px=feather, mode=mode,
                                             control=request.control or None) for i, img in enumerate(images)]
                images = [out for edited in edits for out in edited.images]
                runs.append(edits[0])  # every image of a step has the same plan and model
        except UnchangedOutput:
            raise BadOutput(f"the edit changed no pixel: {_why_unchanged(target, request)}") from None
        if matte is not None:
            images = [_apply_matte(matte, request.mode, image, out) for out in images]
        if any(np.array_equal(out, image) for out in images):
            raise BadOutput(f"the edit changed no pixel: {_why_unchanged(target, request)}")
        recorded = [(m, p, run.plan) for (m, p), run in zip(steps, runs)] if request.prompt_for or request.steps else []
        recipe = self._recipe(image, mask, detections, request, params, runs[-1].generated, origin,
                              selection_models, recorded, runs[0].plan.size, matte)
        return EditResult(images, target, detections, recipe, matte, _skipped_phrases(request, detections))

    def _checked(self, image, mask, request, result, generator, params, attempt) -> EditResult:
        """Look again after `result`; retry a failed look (next seed, or next remover) up to request.retries
        times. The result returned is the passing attempt's, else the last one's; its recipe lists every look."""
        want = "absent" if request.mode == "remove" else "present"
        region = masks.grow(mask, request.grow)
        looks = []
        for number in range(request.retries + 1):
            seen = [look_again(self.detector, out, region, request.check, want) for out in result.images]
            look = next((x for x in seen if not x.passed), seen[0])
            sampled = result.recipe.parameters["sampled"]
            looks.append({"attempt": number, "model": result.recipe.models["generator"].get("name"),
                          "seed": result.recipe.seed if sampled else None, **look.to_dict()})
            if look.passed or number == request.retries:
                break
            if sampled:
                params = dataclasses.replace(params, seed=wrap_seed(params.seed + params.n_images))
            else:
                following = next_remover(generator.name) if request.mode == "remove" else None
                if following is None:
                    break  # nothing else to try: a deterministic fill gives the same pixels again
                generator = get_generator(following)
                params = self._prepare_params(image, mask, request, generator)
            result = attempt(generator, params)
        result.recipe.parameters["check"] = {"phrase": request.check, "want": want, "retries": request.retries,
                                             "passed": look.passed, "attempts": looks}
        return dataclasses.replace(result, check=look)

    def generate(self, request: GenerateRequest, *, source: str | None = None,
                 name: str | None = None) -> GenerateResult:
        """Text to image, or image to image from `request.image`, with a recipe for every image.

        For img2img, `source` or `name` say where the picture is, as for `edit`."""
        origin = _origin(source, name) if request.image is not None else None
        return generation.generate(self.text_generator, request, origin=origin)

    def _prepare_params(self, image: np.ndarray, mask: np.ndarray, request: EditRequest,
                        generator: Any) -> GenerationParams:
        """The request's params with the seed, the generator's defaults for unset sampler/steps/CFG, and a prompt."""
        params = request.params.with_defaults(model_defaults(generator)).with_seed()
        if not getattr(generator, "takes_prompt", True):  # it fills from the surroundings: the recipe claims no prompt
            return dataclasses.replace(params, prompt="", negative_prompt="")
        negative = getattr(generator, "takes_negative_prompt", True)
        if request.mode == "remove" and not params.prompt:
            params = dataclasses.replace(params, prompt=REMOVE_PROMPT,
                                         negative_prompt=params.negative_prompt or (REMOVE_NEGATIVE if negative else ""))
        needs_prompt = request.mode in ("replace", "background") and not request.prompt_for and not request.steps
        if needs_prompt and not params.prompt:
            if self.captioner is None:
                raise InvalidInputError(
                    f"{request.mode} needs a prompt (--prompt); or download a captioner to write one: "
                    f"{captioner_download()}")
            params = dataclasses.replace(params, prompt=self.captioner.caption(image, mask=masks.invert(mask)))
        return params

    def _instance_steps(self, detections: Detections, target: np.ndarray, request: EditRequest,
                        params: GenerationParams) -> list[tuple[np.ndarray, GenerationParams]]:
        """One generation over the whole target, or one per phrase group with its own prompt."""
        if request.steps:
            return [(np.asarray(m, bool), dataclasses.replace(params, prompt=p)) for m, p in request.steps]
        if not request.prompt_for or detections.masks is None:
            return [(target, params)]
        steps = []
        rest = np.zeros_like(target)
        for phrase, prompt in request.prompt_for.items():
            group = detections[np.array([_same_phrase(p, phrase) for p in detections.phrases], bool)]
            if len(group):  # a phrase this photo lacks is skipped (the caller says so); the others still apply
                steps.append((group.union_mask(), dataclasses.replace(params, prompt=prompt)))
        if not steps:
            raise NothingFound(f"--prompt-for: no selected instance has any of the phrases "
                               f"{', '.join(map(repr, request.prompt_for))} "
                               f"(found: {', '.join(sorted(set(detections.phrases))) or 'nothing'})")
        unmatched = [phrase for phrase in detections.phrases
                     if not any(_same_phrase(p, phrase) for p in request.prompt_for)]
        for i, phrase in enumerate(detections.phrases):
            if phrase in unmatched:
                rest |= detections.masks[i]
        if rest.any():
            if not params.prompt:
                raise InvalidInputError(f"selected instance(s) {', '.join(sorted(set(unmatched)))} have no "
                                        "--prompt-for; add one, a --prompt for the rest, or --keep-phrase")
            steps.append((rest, params))
        return steps

    def _recipe(self, image, mask, detections, request, params, generated, origin, selection_models,
                steps, size, matte=None) -> Recipe:
        """The recipe, from what the generation returned (`generated`) and each step's plan."""
        selection = request.selection
        # Only a sampler uses steps, CFG and a seed: the parameters chunk of OpenCV's fill, a recolor
        # or a service that takes no seed does not claim them.
        sampled = bool(generated.seeds)
        control = {kind: {"path": str(Path(request.control_files[kind]).resolve())
                          if kind in request.control_files else None, "sha256": array_sha256(np.asarray(array))}
                   for kind, array in request.control.items()}
        return Recipe(
            operation=f"edit:{request.mode}",
            inputs={**origin, "sha256": array_sha256(image), "size": [image.shape[1], image.shape[0]]},
            parameters={
                "generation": params.to_dict(), "generation_size": list(size),
                "selection": {"text": selection.text, "points": selection.points, "boxes": selection.boxes},
                "keep": request.keep, "keep_phrases": request.keep_phrases, "prompt_for": request.prompt_for,
                "grow": request.grow, "feather": request.feather, "full_image": request.full_image,
                "color": request.color, "detections": detections.to_json(), "mask": encode_mask(mask),
                "control": control, "sampled": sampled,
                **({"steps": [{"prompt": p.prompt, "mask": encode_mask(m), "box": list(plan.box),
                                "generation_size": list(plan.size)} for m, p, plan in steps]} if steps else {}),
                **({"prompt_expansion": request.expansion} if request.expansion else {}),
                **({"matte": matte.record()} if matte is not None else {}),
            },
            models={"generator": generated.recipe_model(), **selection_models,
                    **({"matter": backend_info(self.matter)} if matte is not None else {})},
            seed=params.seed,
            versions=library_versions(),
        )

    def _selection_models(self, selection: Prompt) -> dict[str, dict[str, Any]]:
        models = {"segmenter": backend_info(self.segmenter)}
        if selection.text:
            models["detector"] = backend_info(self.detector)
        return models


def _why_unchanged(target: np.ndarray, request: EditRequest) -> str:
    """What to change when an edit left the image as it was."""
    grown = masks.grow(target, request.grow) if request.mode != "recolor" else target
    if request.mode == "remove" and grown.all():
        return ("the (grown) selection covers the whole image, so nothing is left around it to fill from; "
                "select less or lower --grow")
    depth = float(cv2.distanceTransform(np.pad(grown, 1).astype(np.uint8), cv2.DIST_L2, 5).max())
    if request.feather >= depth:
        return (f"--feather {request.feather:g} is wider than the edited area is deep ({depth:.0f} px from its "
                "edge at most), so the blend never shows the result; lower --feather")
    return "the generator returned the input's pixels; try another prompt, seed or backend"


def _skipped_phrases(request: EditRequest, detections: Detections) -> list[str]:
    if request.steps or not request.prompt_for:
        return []
    return [f"--prompt-for {phrase!r}: no such instance in this photo; skipped (the others were edited)"
            for phrase in request.prompt_for if not any(_same_phrase(p, phrase) for p in detections.phrases)]


def _same_phrase(a: str, b: str) -> bool:
    """Whole-phrase match, ignoring case and spacing: "dog" is not "hot dog"."""
    return a.lower().split() == b.lower().split()


def _origin(source: str | None, name: str | None) -> dict[str, str | None]:
    """The recipe's record of where the photo is: {"image": path or URI}, or {"image": None, "name": …}."""
    if name is not None:
        if source is not None or not name or Path(name).name != name:
            raise InvalidInputError(f"an input name is a bare file name given instead of a path; got {name!r}")
        return {"image": None, "name": name}
    return {"image": (source if is_uri(source) else str(Path(source).resolve())) if source else None}


def _edit_area(selection: np.ndarray, request: EditRequest, matte: Matte | None = None) -> tuple[np.ndarray, float]:
    """The area handed to compose and how far compose may grow it, so that each mode only touches what it should.

    replace/remove: the selection, grown (halos the segmenter missed go too).
    background: everything but the grown selection, grown back up to the selection's edge: the
    subject itself is never repainted. With a matte: everything but its sure foreground, band included
    (the new background shows through where the subject is partly transparent).
    recolor: the selection itself, not grown: a tint must not spill onto the surroundings. With a matte:
    the selection and its band, the tint weighed by the alpha there.
    """
    if matte is not None:
        keep = matte.sure_foreground(selection.shape) if request.mode == "background" else ~matte.reach(selection.shape)
        return ~keep, 0.0
    if request.mode == "background":
        return ~masks.grow(selection, request.grow), request.grow
    if request.mode == "recolor":
        return selection, 0.0
    return selection, request.grow


def _apply_matte(matte: Matte, mode: str, image: np.ndarray, edited: np.ndarray) -> np.ndarray:
    """background: the subject's own colours over the new background; recolor: the tint by the alpha."""
    return matte.over(image, edited) if mode == "background" else matte.composite(edited, image)


def _nth(params: GenerationParams, index: int, count: int) -> GenerationParams:
    """Later per-instance steps run once per image of the first step, each with that image's seed."""
    if count == 1:
        return params
    return dataclasses.replace(params, seed=wrap_seed(params.seed + index), batch_size=1, batch_count=1)


def _build_detector(name: str, **options):
    from .detect import get_detector

    return get_detector(str(name), **options)


def _build_segmenter(name: str, **options):
    from .segment import get_segmenter

    return get_segmenter(str(name), **options)


def _build_captioner(name: str, **options):
    from .caption import get_captioner

    return get_captioner(str(name), **options)


def _build_remover(name: str, **options):
    """A remover by name; "auto" gives the best learned one on disk, else OpenCV's Telea fill.

    Not Stable Diffusion even when it is present: an inpainting model asked to fill a hole with
    "background" tends to paint a new object there, which is the opposite of a removal.
    """
    if _is_auto(name):
        name = best_remover()
        if name is None:
            telea = ClassicalGenerator("telea")
            telea.note = (f"no LaMa or MI-GAN weights; fetch one with: {download_command('lama')} "
                          f"or {download_command('migan')}")
            return telea
    return get_generator(name, **options)


def _auto_pick(kind: str, options: dict) -> str | None:
    """The model "auto" builds for `kind`, named without building it."""
    if kind == "detector":
        from .detect import DETECTORS

        return DETECTORS.pick()
    from .models import pick_device

    # The device decides the order; sizing the models must not be what imports torch (seconds).
    device = pick_device() if "torch" in sys.modules else "cpu"
    if kind == "segmenter":
        from .segment import SEGMENTERS

        return SEGMENTERS.pick(device)
    from .generate.auto import pick

    return pick(with_options=bool(options), device=device)[0]


def _is_auto(spec: Any) -> bool:
    return isinstance(spec, str) and spec == "auto"


_BUILDERS = {"detector": _build_detector, "segmenter": _build_segmenter, "generator": get_generator,
             "captioner": _build_captioner, "remover": _build_remover, "matter": get_matter}
