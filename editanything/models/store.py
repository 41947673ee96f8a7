"""Where model files live on disk, how a model name resolves to them, and their checksums.

Lookup order: `checkpoints/` (or $EDITANYTHING_CHECKPOINTS), then $EDITANYTHING_HOME
(default ~/.cache/editanything), then the Hugging Face cache. Nothing here downloads.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ChecksumMismatch, ModelNotFound
from .manifest import MODELS, HfSource, ModelFile, ModelSpec, find_spec, get_spec, with_dependencies


def checkpoints_dir() -> Path:
    """The project's checkpoints folder (beside the package in a source checkout)."""
    env = os.environ.get("EDITANYTHING_CHECKPOINTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "checkpoints"


def home_dir() -> Path:
    env = os.environ.get("EDITANYTHING_HOME")
    return Path(env) if env else Path.home() / ".cache" / "editanything"


def cache_dir() -> Path:
    """Where files derived from models are kept (e.g. SAM's exported decoder): $EDITANYTHING_CACHE or home/cache."""
    env = os.environ.get("EDITANYTHING_CACHE")
    return Path(env) if env else home_dir() / "cache"


def model_roots() -> list[Path]:
    return [checkpoints_dir(), home_dir()]


def download_root() -> Path:
    """Downloads go to checkpoints/ when it exists (a source checkout), else to the home folder."""
    ckpt = checkpoints_dir()
    return ckpt if ckpt.is_dir() else home_dir()


def download_command(name: str) -> str:
    return f"editanything models download {name}"


@dataclass(frozen=True)
class ResolvedModel:
    """A model found on disk: `files` maps each manifest path to the file that holds it."""

    spec: ModelSpec
    root: Path
    files: dict[str, Path]

    @property
    def folder(self) -> Path:
        """The folder holding a multi-file model (what `from_pretrained` wants)."""
        first = self.spec.files[0]
        inner = first.path.split("/", 1)[1] if "/" in first.path else first.path
        path = self.files[first.path]
        return Path(str(path)[: -len(inner)].rstrip("/")) if "/" in first.path else path.parent

    def path(self, manifest_path: str | None = None) -> Path:
        """The file of a single-file model, or the named file of a multi-file one."""
        return self.files[manifest_path or self.spec.files[0].path]


def _required(spec: ModelSpec) -> list[ModelFile]:
    return [f for f in spec.files if not f.optional]


def files_in_root(spec: ModelSpec, root: Path) -> dict[str, Path] | None:
    """The model's files under `root` by manifest path, when every required one is there (else None)."""
    found = {f.path: root / f.path for f in spec.files if (root / f.path).is_file()}
    return found if all(f.path in found for f in _required(spec)) else None


def _in_hf_cache(spec: ModelSpec) -> dict[str, Path] | None:
    if not all(isinstance(s, HfSource) for f in spec.files for s in f.sources[:1]):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = {}
    for f in spec.files:
        src = f.sources[0]
        hit = try_to_load_from_cache(src.repo_id, src.filename, revision=src.revision)
        if isinstance(hit, str):
            found[f.path] = Path(hit)
        elif not f.optional:
            return None
    return found


def find_model(name: str) -> ResolvedModel | None:
    """The model's files, or None when they are not all present in any root."""
    spec = get_spec(name)
    for root in model_roots():
        files = files_in_root(spec, root)
        if files is not None:
            return ResolvedModel(spec, root, files)
    files = _in_hf_cache(spec)
    if files is not None:
        return ResolvedModel(spec, Path("<hf-cache>"), files)
    return None


def resolve(name: str) -> ResolvedModel:
    """The model's files on disk, or ModelNotFound whose message is the command that fetches them.

    A file whose size differs from the manifest's is refused (ChecksumMismatch) before anything
    uses it: a truncated or foreign file never loads as if it were the model.
    """
    found = find_model(name)
    if found is None:
        spec = get_spec(name)
        where = ", ".join(str(r) for r in model_roots())
        raise ModelNotFound(
            f"model '{name}' ({spec.description}) not found in {where} or the Hugging Face cache; "
            f"fetch it with: {download_command(name)}"
        )
    for f in found.spec.files:
        path = found.files.get(f.path)
        problem = size_problem(f, path) if path is not None else None
        if problem:
            raise ChecksumMismatch(f"{path}: {problem}; delete it and run `{download_command(name)}`")
    return found


def size_problem(f: ModelFile, path: Path) -> str | None:
    """Why a present file cannot be the manifest's (its size differs), or None."""
    if f.size is None:
        return None
    have = path.stat().st_size
    return None if have == f.size else f"has {have:,} bytes, expected {f.size:,} (incomplete or another file)"


_HASHES: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """sha256 of a file, remembered by path, size and mtime (checkpoints are gigabytes)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


HASH_CACHE_FILE = "sha256-cache.json"


def cached_sha256(path: Path) -> str:
    """sha256 of a file, kept on disk by path, size and mtime: a checkpoint is hashed once, not per run.

    For recipes; `verify_model` reads the file again, since a changed byte keeps size and mtime.
    """
    path = Path(path)
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    store = cache_dir() / HASH_CACHE_FILE
    try:
        known = json.loads(store.read_text())
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError, RecursionError):
        known = {}
    digest = known.get(key)
    if not isinstance(digest, str):
        digest = sha256_file(path)
        known[key] = digest
        try:
            store.parent.mkdir(parents=True, exist_ok=True)
            tmp = store.with_name(f"{store.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known, indent=0, sort_keys=True))
            os.replace(tmp, store)
        except OSError:
            pass  # a read-only cache only costs hashing again next run
    return digest


@dataclass(frozen=True)
class FileCheck:
    path: Path
    status: str  # "ok", "unverified" (no pinned sha256), "mismatch", "size"
    digest: str | None
    expected: str | None
    detail: str = ""


def check_file(f: ModelFile, path: Path, *, hash: bool = True) -> FileCheck:
    """A present file against the manifest: its size, then (with `hash`) its pinned sha256."""
    problem = size_problem(f, path)
    if problem:
        return FileCheck(path, "size", None, f.sha256, problem)
    if not hash:
        return FileCheck(path, "ok" if f.pinned else "unverified", None, f.sha256)
    digest = sha256_file(path)
    if f.sha256 is None:
        return FileCheck(path, "unverified", digest, None)
    return FileCheck(path, "ok" if digest == f.sha256 else "mismatch", digest, f.sha256)


def verify_model(name: str) -> list[FileCheck]:
    """Hash every file of a model present on disk and compare with its pinned checksum."""
    found = find_model(name)
    if found is None:
        resolve(name)  # raises ModelNotFound with the download command
    return [check_file(f, found.files[f.path]) for f in found.spec.files if f.path in found.files]


def verified(name: str) -> ResolvedModel:
    """`resolve`, then every pinned file hashed (cached by size and mtime): ChecksumMismatch on a difference.

    For files that are turned into something else (HED's conversion): a damaged source must
    fail here, not become a model that silently outputs nothing.
    """
    found = resolve(name)
    for check in verify_model(name):
        if check.status in ("mismatch", "size"):
            why = check.detail or f"has sha256 {check.digest[:12]}…, expected {check.expected[:12]}…"
            raise ChecksumMismatch(f"{check.path}: {why}; the file is damaged: delete it and run "
                                   f"`{download_command(name)}`")
    return found


def bytes_on_disk(model: str | os.PathLike) -> int:
    """The size of a model's files on disk and of the models it requires (a model name), or of the files in
    a checkpoint file or folder (a path); 0 for what is not there."""
    if isinstance(model, str) and find_spec(model) is not None:
        found = [find_model(spec.name) for spec in with_dependencies(model)]
        paths = {p for f in found if f is not None for p in f.files.values()}
    else:
        path = Path(model).expanduser()
        paths = set(path.rglob("*")) if path.is_dir() else {path}
    return sum(p.stat().st_size for p in paths if p.is_file())


def model_files(name: str) -> list[dict[str, str]]:
    """The files of a registered model found on disk, each with the sha256 of the file itself (hashed once,
    then cached by size and mtime), not the manifest's pin: a damaged file is recorded as what it is.
    Empty for a name that is no model."""
    if name not in MODELS:
        return []
    found = find_model(name)
    if found is None:
        return []
    out = []
    for spec_file in found.spec.files:
        path = found.files.get(spec_file.path)
        if path is None:
            continue
        out.append({"path": str(path), "sha256": cached_sha256(path)})
    return out
