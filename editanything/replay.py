"""Re-making an output from the recipe in its PNG: check the recipe, find its input, rebuild the job, run it.

One path for every kind of recipe (`edit:<mode>`, `generate:<mode>`, `sketch:<style>`): the same checks of the fields they
share, one input finder, one error helper; each kind adds only the checks of its own parameters and how
its job is rebuilt (`KINDS`).

A recipe is untrusted: anyone can write a PNG text chunk, and a PNG may come from another tool.
Every field replay uses is checked for type, range and size before it costs anything (the mask's
size is compared with the image before a pixel of it is allocated), and a bad one is one
InvalidInputError naming the field. Replay needs no detector or segmenter: the recipe keeps the
exact mask of every generation step.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .errors import InvalidInputError
from .generate import GENERATORS, GenerationParams, get_generator
from .generation import MODES as GENERATE_MODES
from .generation import GenerateRequest
from .imageio import limit_size, read_image, write_image
from .matte import MATTERS
from .pipeline import MODES, EditRequest
from .prompting.types import Expansion
from .recipe import array_sha256, decode_mask
from .sketch import GENERATIVE_STYLES, check_params, needs_color, sketch_generated
from .sketch_recipe import generative_text, sketch_recipe
from .types import MAX_SEED, Recipe

_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_THREADS = 4096
MAX_TEXT = 10_000
# The only constructor settings a recipe may give a hosted backend: what decides its pixels. Never where
# a request goes (STABILITY_BASE_URL / OPENAI_BASE_URL and the keys come from the environment only), nor
# retries, timeouts or TLS: a PNG is untrusted, and anything else in it is refused before a request is sent.
REMOTE_OPTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "stability": {"search_and_replace": (bool,), "search_prompt": (str, type(None)), "grow_mask": (int,),
                  "model": (str,)},
    "openai": {"model": (str,)},
}


@dataclass
class Replay:
    """What `replay` runs for an edit: the input image, the request, the generator (None: recolor builds its
    own) and the matting backend a --matte edit used."""

    image: np.ndarray
    source: Path
    request: EditRequest
    generator: Any
    matter: str = "auto"

    def run(self, output: str | Path | None, result: str | Path) -> tuple[np.ndarray, Recipe]:
        """Edit again, write `output` if given; the image and the recipe it was made with."""
        from .pipeline import Editor

        editor = Editor(generator=self.generator if self.generator is not None else "classical", matter=self.matter)
        edited = editor.edit(self.image, self.request, source=str(self.source))
        if output is not None:
            edited.save(output, inputs=(self.source, Path(result)))
        return edited.images[0], edited.recipe


@dataclass
class GenerateReplay:
    """What `replay` runs for a generated image: the request (with the picture for img2img), where that
    picture is, and the generator."""

    request: GenerateRequest
    source: Path | None
    generator: Any

    def run(self, output: str | Path | None, result: str | Path) -> tuple[np.ndarray, Recipe]:
        """Generate again, write `output` if given; the image and its recipe."""
        from .pipeline import Editor

        generated = Editor(generator=self.generator).generate(
            self.request, source=str(self.source) if self.source else None)
        if output is not None:
            generated.save(output, inputs=(Path(result), *((self.source,) if self.source else ())))
        return generated.images[0], generated.recipe


@dataclass
class SketchReplay:
    """What `replay` runs for a generative sketch: the style, its parameters, the photo (as read) and where
    it came from."""

    style: str
    params: dict[str, Any]
    source: Path
    image: np.ndarray
    max_side: int | None
    expansion: dict[str, Any] | None = None

    def run(self, output: str | Path | None, result: str | Path) -> tuple[np.ndarray, Recipe]:
        """Draw again, write `output` if given; the drawing and its recipe."""
        drawn = sketch_generated(limit_size(self.image, self.max_side), self.style, **self.params)
        recipe = sketch_recipe(self.style, self.params, source=self.source, photo=self.image, drawn=drawn,
                               max_side=self.max_side, expansion=self.expansion)
        if output is not None:
            write_image(output, drawn.images[0], text=generative_text(recipe, drawn.images[0]),
                        inputs=(self.source, Path(result)))
        return drawn.images[0], recipe


def _bad(field: str, expected: str, value: Any) -> InvalidInputError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return InvalidInputError(f"broken or foreign recipe: {field} must be {expected}; got {shown}")


def _dict(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise _bad(field, "a JSON object", value)
    return value


def _str(value: Any, field: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _bad(field, "a string", value)
    return value


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(field, f"an integer in {lo}..{hi}", value)
    return value


def _number(value: Any, field: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise _bad(field, f"a number in [{lo:g}, {hi:g}]", value)
    return float(value)


def _size(value: Any, field: str) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise _bad(field, "a pair of sides", value)
    return _int(value[0], f"{field}[0]", 1, 10**6), _int(value[1], f"{field}[1]", 1, 10**6)


def _sha(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise _bad(field, "a sha256 (64 hex digits)", value)
    return value


def check_recipe(recipe: Recipe) -> None:
    """Raise InvalidInputError unless every field replay reads has the right type and a sane value."""
    operation = _str(recipe.operation, "operation")
    kind, _, what = operation.partition(":")
    if kind not in KINDS:
        raise InvalidInputError(f"this recipe is a {operation!r}; replay runs: {', '.join(KINDS)}")
    KINDS[kind].check(recipe, what)


def _check_inputs(recipe: Recipe) -> tuple[int, int]:
    """The fields every kind shares: the input (a path or a bare name, its sha256 and size) and the seed."""
    inputs = _dict(recipe.inputs, "inputs")
    _str(inputs.get("image"), "inputs.image", optional=True)
    name = _str(inputs.get("name"), "inputs.name", optional=True)
    if name is not None and (not name or Path(name).name != name or name in (".", "..")):
        raise _bad("inputs.name", "a bare file name", name)
    _sha(inputs.get("sha256"), "inputs.sha256")
    if recipe.seed is not None:
        _int(recipe.seed, "seed", 0, MAX_SEED)
    return _size(inputs.get("size"), "inputs.size")


def _check_expansion(expansion: Any) -> None:
    if expansion is not None:
        Expansion.from_dict(expansion)  # replay reuses the prompt; the record must still be sane


def _check_edit(recipe: Recipe, mode: str) -> None:
    if mode not in MODES:
        raise _bad("operation", f"edit:<{'|'.join(MODES)}>", recipe.operation)
    w, h = _check_inputs(recipe)
    p = _dict(recipe.parameters, "parameters")
    _dict(p.get("generation"), "parameters.generation")
    longest = max(w, h)
    # A grow or feather as wide as the image already reaches every pixel; more is no edit anyone made.
    _number(p.get("grow"), "parameters.grow", 0, longest)
    _number(p.get("feather"), "parameters.feather", 0, longest)
    for flag in ("full_image", "sampled"):
        if not isinstance(p.get(flag, False), bool):
            raise _bad(f"parameters.{flag}", "true or false", p.get(flag))
    _str(p.get("color"), "parameters.color", optional=True)
    if mode == "recolor" and not p.get("color"):
        raise _bad("parameters.color", "a colour for a recolor", p.get("color"))
    _check_mask(p.get("mask"), "parameters.mask", (h, w))
    steps = p.get("steps")
    if steps is not None:
        if not isinstance(steps, list) or not 1 <= len(steps) <= 64:
            raise _bad("parameters.steps", "a list of 1..64 generation steps", steps)
        for i, step in enumerate(steps):
            step = _dict(step, f"parameters.steps[{i}]")
            _str(step.get("prompt"), f"parameters.steps[{i}].prompt")
            _check_mask(step.get("mask"), f"parameters.steps[{i}].mask", (h, w))
    if p.get("matte") is not None:
        matte = _dict(p["matte"], "parameters.matte")
        try:  # a registered backend, or a ViTMatte model of the manifest
            MATTERS.builder(_str(matte.get("backend"), "parameters.matte.backend"))
        except InvalidInputError:
            raise _bad("parameters.matte.backend", f"one of {', '.join(MATTERS)}, or a ViTMatte model of the "
                       "manifest", matte.get("backend")) from None
        _number(matte.get("band"), "parameters.matte.band", 1, 512)
    _check_expansion(p.get("prompt_expansion"))
    control = _dict(p.get("control", {}), "parameters.control")
    for key, entry in control.items():
        entry = _dict(entry, f"parameters.control.{key}")
        _str(entry.get("path"), f"parameters.control.{key}.path", optional=True)
        _sha(entry.get("sha256"), f"parameters.control.{key}.sha256")
    models = _dict(recipe.models, "models")
    _check_generator(_dict(models.get("generator", {}), "models.generator"))


def _check_generate(recipe: Recipe, mode: str) -> None:
    if mode not in GENERATE_MODES:
        raise _bad("operation", f"generate:<{'|'.join(GENERATE_MODES)}>", recipe.operation)
    if mode == "img2img":
        _check_inputs(recipe)
    elif recipe.seed is not None:
        _int(recipe.seed, "seed", 0, MAX_SEED)
    p = _dict(recipe.parameters, "parameters")
    generation = _dict(p.get("generation"), "parameters.generation")
    _str(generation.get("prompt"), "parameters.generation.prompt")
    _size(p.get("generation_size"), "parameters.generation_size")
    _check_expansion(p.get("prompt_expansion"))
    _check_generator(_dict(_dict(recipe.models, "models").get("generator", {}), "models.generator"))


def _check_sketch(recipe: Recipe, style: str) -> None:
    if style not in GENERATIVE_STYLES:
        raise InvalidInputError(f"a {style!r} sketch records only its style and parameters, not a seed or its "
                                f"input; run `editanything sketch --style {style}` on the photo again instead")
    _check_inputs(recipe)
    p = _dict(recipe.parameters, "parameters")
    params = check_params(style, _dict(p.get("sketch"), "parameters.sketch"))  # unknown names, wrong types
    _int(params.get("seed"), "parameters.sketch.seed", 0, MAX_SEED)
    _int(params.get("threads"), "parameters.sketch.threads", 1, MAX_THREADS)
    if p.get("max_side") is not None:
        _int(p["max_side"], "parameters.max_side", 16, 10**6)
    _check_expansion(p.get("prompt_expansion"))


def _check_mask(mask: Any, field: str, shape: tuple[int, int]) -> None:
    mask = _dict(mask, field)
    mh, mw = _size(mask.get("size"), f"{field}.size")
    if (mh, mw) != shape:
        raise InvalidInputError(f"broken or foreign recipe: {field} is {mw}x{mh}, the input image "
                                f"{shape[1]}x{shape[0]}; they must match")
    runs = mask.get("runs")
    if not isinstance(runs, list) or len(runs) > mh * mw + 1 \
            or not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in runs):
        raise _bad(f"{field}.runs", f"a list of at most {mh * mw + 1} run lengths >= 0", runs)
    if sum(runs) != mh * mw:
        raise InvalidInputError(f"broken or foreign recipe: {field} runs cover {sum(runs)} pixels, "
                                f"expected {mh * mw}")


def _check_generator(info: dict) -> None:
    name = _str(info.get("name", "classical"), "models.generator.name")
    if name == "recolor":
        return
    _str(info.get("file"), "models.generator.file", optional=True)
    _check_options(name, _dict(info.get("options", {}), "models.generator.options"))
    if info.get("radius") is not None:
        _number(info["radius"], "models.generator.radius", 0.1, 100)
    if info.get("threads") is not None:
        _int(info["threads"], "models.generator.threads", 1, MAX_THREADS)
    for key, fields in (("loras", {"path": str, "scale": float}), ("embeddings", {"path": str, "token": str}),
                        ("controlnets", {"kind": str, "path": str, "scale": float})):
        entries = info.get(key, [])
        if not isinstance(entries, list):
            raise _bad(f"models.generator.{key}", "a list", entries)
        for i, entry in enumerate(entries):
            entry = _dict(entry, f"models.generator.{key}[{i}]")
            for field, kind in fields.items():
                where = f"models.generator.{key}[{i}].{field}"
                _str(entry.get(field), where) if kind is str else _number(entry.get(field), where, -100, 100)


def _check_options(name: str, options: dict) -> None:
    """Only the allow-listed settings of a hosted backend, each of its type; a local one takes none."""
    allowed = REMOTE_OPTIONS.get(name, {})
    for key, value in options.items():
        field = f"models.generator.options.{key}"
        if key not in allowed:
            takes = ", ".join(allowed) or "none"
            raise InvalidInputError(f"broken or foreign recipe: {field} is not a setting replay takes for {name} "
                                    f"(it takes: {takes}); endpoints and keys come from the environment only")
        kinds = allowed[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise _bad(field, " or ".join("null" if k is type(None) else k.__name__ for k in kinds), value)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise _bad(field, f"at most {MAX_TEXT} characters", value)


def find_input(recipe: Recipe, result: str | Path, given: str | Path | None = None, *,
               gray: bool = False) -> tuple[Path, np.ndarray]:
    """The input photo: `given`, else the recorded path, else a file of the same name beside `result`;
    read as grey when `gray` (as a grey sketch style read it).

    Whichever it is, its pixels must hash to the recipe's sha256.
    """
    kind = recipe.operation.partition(":")[0]
    expected = recipe.inputs["sha256"]
    if given is not None:
        candidates = [Path(given)]
    else:
        recorded = recipe.inputs.get("image")
        name = recipe.inputs.get("name")  # an upload's: no path was worth recording
        if not recorded and not name:
            raise InvalidInputError(f"{result}: the recipe names no input file; pass it with --image")
        candidates = list(dict.fromkeys([Path(recorded), Path(result).parent / Path(recorded).name]) if recorded
                          else [Path(result).parent / name])
    for path in candidates:
        if not path.is_file():
            continue
        image = read_image(path, gray=gray)
        if array_sha256(image) == expected:
            return path, image
        if given is not None:
            raise InvalidInputError(f"{path}: not the image this {kind} was made from (its pixels differ); "
                                    "pass the right one with --image")
    tried = " or ".join(str(p) for p in candidates)
    raise InvalidInputError(f"the input of {result} is not at {tried} (or its pixels changed); "
                            "pass it with --image")


def find_controls(recipe: Recipe, result: str | Path, image_shape: tuple[int, ...],
                  given: Mapping[str, str | Path] | None = None) -> dict[str, tuple[Path, np.ndarray]]:
    """The control images the edit was given (e.g. seg): from `given`, the recorded path, or beside `result`."""
    recorded = recipe.parameters.get("control", {})
    given = dict(given or {})
    unknown = sorted(set(given) - set(recorded))
    if unknown:
        raise InvalidInputError(f"--control-image {unknown[0]}: this edit used no {unknown[0]} control image "
                                f"(it used: {', '.join(recorded) or 'none'})")
    out = {}
    for kind, entry in recorded.items():
        if kind in given:
            candidates = [Path(given[kind])]
        elif entry.get("path"):
            candidates = list(dict.fromkeys([Path(entry["path"]), Path(result).parent / Path(entry["path"]).name]))
        else:
            candidates = []
        for path in candidates:
            if path.is_file():
                control = read_image(path)
                if array_sha256(control) == entry["sha256"] and control.shape[:2] == image_shape[:2]:
                    out[kind] = (path, control)
                    break
                if kind in given:
                    raise InvalidInputError(f"{path}: not the {kind} control image this edit used (its pixels "
                                            "differ); pass the right one with --control-image")
        else:
            where = " or ".join(str(p) for p in candidates) or "an unrecorded path"
            raise InvalidInputError(f"the {kind} control image of {result} is not at {where} (or it changed); "
                                    f"pass it with --control-image {kind}=PNG")
    return out


def request_from_recipe(recipe: Recipe, image_shape: tuple[int, ...],
                        control: Mapping[str, tuple[Path, np.ndarray]] | None = None) -> EditRequest:
    """The request that made a recipe, with its exact mask(s): one image, the one whose seed it holds."""
    check_recipe(recipe)
    h, w = image_shape[:2]
    if recipe.inputs["size"] != [w, h]:
        raise InvalidInputError(f"broken or foreign recipe: it was made on a {recipe.inputs['size'][0]}x"
                                f"{recipe.inputs['size'][1]} image, this one is {w}x{h}")
    p = recipe.parameters
    if p.get("prompt_for") and not p.get("steps"):
        raise InvalidInputError("this per-instance (--prompt-for) edit was made by a version that kept only the "
                                "union of the masks; it cannot be replayed")
    mode = recipe.operation.split(":", 1)[1]
    # Each output PNG stores its own seed: replay makes that one image, not the whole batch.
    generation = {**p["generation"], "seed": -1 if recipe.seed is None else recipe.seed,
                  "batch_size": 1, "batch_count": 1}
    steps = [(decode_mask(s["mask"]), s["prompt"]) for s in p.get("steps") or []]
    return EditRequest(
        mode=mode, mask=decode_mask(p["mask"]), params=GenerationParams.from_dict(generation), grow=p["grow"],
        feather=p["feather"], full_image=p.get("full_image", False), color=p.get("color"),
        control={k: array for k, (_, array) in (control or {}).items()},
        control_files={k: str(path) for k, (path, _) in (control or {}).items()}, steps=steps,
        expansion=p.get("prompt_expansion"), matte=p.get("matte") is not None,
        matte_band=p["matte"]["band"] if p.get("matte") else None,
    )


def generator_from_recipe(recipe: Recipe) -> Any:
    """Rebuild the generator a recipe names (registry name, or the checkpoint file/folder it records),
    with the CPU thread count it generated with."""
    info = recipe.models.get("generator", {})
    name = info.get("name", "classical")
    if name == "recolor":
        return None  # recolor builds its own generator from the request's colour
    if name.startswith("classical"):
        return get_generator(name, radius=info.get("radius", 5.0))
    if name in REMOTE_OPTIONS:  # a hosted service: its allow-listed settings; endpoint and key from the environment
        options = info.get("options", {})
        return get_generator(name, **{k: options[k] for k in REMOTE_OPTIONS[name] if k in options})
    options = {
        "loras": [f"{x['path']}:{x['scale']}" for x in info.get("loras", [])],
        "embeddings": [(x["path"], x["token"]) for x in info.get("embeddings", [])],
        "controlnets": [(c["kind"], c["path"]) for c in info.get("controlnets", [])],
        "controlnet_scale": [c["scale"] for c in info.get("controlnets", [])],
        "threads": info.get("threads"),
    }
    options = {k: v for k, v in options.items() if v}
    return get_generator(name if name in GENERATORS else info.get("file", name), **options)


def _edit_job(recipe: Recipe, result: str | Path, image: str | Path | None,
              control: Mapping[str, str | Path] | None) -> Replay:
    source, pixels = find_input(recipe, result, image)
    controls = find_controls(recipe, result, pixels.shape, control)
    request = request_from_recipe(recipe, pixels.shape, controls)
    matter = (recipe.parameters.get("matte") or {}).get("backend", "auto")
    return Replay(pixels, source, request, generator_from_recipe(recipe), matter)


def _sketch_job(recipe: Recipe, result: str | Path, image: str | Path | None,
                control: Mapping[str, str | Path] | None) -> SketchReplay:
    if control:
        raise InvalidInputError("--control-image: a sketch takes no control image (it draws its own lines)")
    style, p = recipe.operation.partition(":")[2], recipe.parameters
    source, photo = find_input(recipe, result, image, gray=not needs_color(style))
    return SketchReplay(style, check_params(style, p["sketch"]), source, photo, p.get("max_side"),
                        p.get("prompt_expansion"))


def _generate_job(recipe: Recipe, result: str | Path, image: str | Path | None,
                  control: Mapping[str, str | Path] | None) -> GenerateReplay:
    mode = recipe.operation.partition(":")[2]
    if control:
        raise InvalidInputError(f"{result} was generated without control images: leave --control-image out")
    if mode == "txt2img" and image is not None:
        raise InvalidInputError(f"{result} was generated from its prompt alone: it takes no --image")
    source, pixels = find_input(recipe, result, image) if mode == "img2img" else (None, None)
    p = recipe.parameters
    width, height = p["generation_size"]
    # Each PNG holds its own seed: replay makes that one image, whichever of a batch it was, at its size.
    generation = {**p["generation"], "seed": -1 if recipe.seed is None else recipe.seed, "batch_size": 1,
                  "batch_count": 1, "width": width, "height": height}
    try:
        params = GenerationParams.from_dict(generation)
    except TypeError as exc:
        raise InvalidInputError(f"broken or foreign recipe: parameters.generation ({exc})") from None
    request = GenerateRequest(params, image=pixels, expansion=p.get("prompt_expansion"))
    return GenerateReplay(request, source, generator_from_recipe(recipe))


@dataclass(frozen=True)
class Kind:
    """What differs between kinds of recipe: the checks of their own fields (given the part of `operation`
    after the colon) and how their job is rebuilt."""

    check: Callable[[Recipe, str], None]
    job: Callable[[Recipe, str | Path, str | Path | None, Mapping[str, str | Path] | None], Replay | GenerateReplay | SketchReplay]


KINDS = {"edit": Kind(_check_edit, _edit_job), "generate": Kind(_check_generate, _generate_job),
         "sketch": Kind(_check_sketch, _sketch_job)}


def prepare_replay(result: str | Path, *, image: str | Path | None = None,
                   control: Mapping[str, str | Path] | None = None) -> Replay | GenerateReplay | SketchReplay:
    """Everything needed to re-make the output `result` (an edit's, a generated image's or a sketch's),
    checked before any model loads."""
    from .recipe import read_recipe

    recipe = read_recipe(result)
    check_recipe(recipe)
    return KINDS[recipe.operation.partition(":")[0]].job(recipe, result, image, control)


def replay(result: str | Path, output: str | Path | None = None, *, image: str | Path | None = None,
           control: Mapping[str, str | Path] | None = None) -> tuple[np.ndarray, Recipe]:
    """Re-make `result` from its recipe, write `output` if given; the image and the recipe it was made with."""
    return prepare_replay(result, image=image, control=control).run(output, result)
