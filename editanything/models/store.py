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
from .manifest import HfSource, ModelFile, ModelSpec, get_spec

HASHES_FILE = ".editanything-sha256.json"


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


def _in_root(spec: ModelSpec, root: Path) -> dict[str, Path] | None:
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
        files = _in_root(spec, root)
        if files is not None:
            return ResolvedModel(spec, root, files)
    files = _in_hf_cache(spec)
    if files is not None:
        return ResolvedModel(spec, Path("<hf-cache>"), files)
    return None


def resolve(name: str) -> ResolvedModel:
    """The model's files on disk, or ModelNotFound whose message is the command that fetches them."""
    found = find_model(name)
    if found is None:
        spec = get_spec(name)
        where = ", ".join(str(r) for r in model_roots())
        raise ModelNotFound(
            f"model '{name}' ({spec.description}) not found in {where} or the Hugging Face cache; "
            f"fetch it with: {download_command(name)}"
        )
    return found


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
    except (OSError, ValueError):
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


def recorded_hashes(root: Path) -> dict[str, str]:
    try:
        return json.loads((root / HASHES_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def record_hash(root: Path, manifest_path: str, digest: str) -> None:
    hashes = recorded_hashes(root)
    hashes[manifest_path] = digest
    tmp = root / f"{HASHES_FILE}.tmp"
    tmp.write_text(json.dumps(hashes, indent=1, sort_keys=True))
    os.replace(tmp, root / HASHES_FILE)


def expected_hash(spec_file: ModelFile, root: Path) -> str | None:
    """The manifest's sha256, else the one recorded at first download."""
    return spec_file.sha256 or recorded_hashes(root).get(spec_file.path)


@dataclass(frozen=True)
class FileCheck:
    path: Path
    status: str  # "ok", "recorded" (first sight, hash stored), "mismatch"
    digest: str
    expected: str | None


def verify_model(name: str) -> list[FileCheck]:
    """Hash every file of a model present on disk and compare with the known checksums.

    Files with no known checksum get theirs recorded now and checked on later runs.
    """
    resolved = resolve(name)
    checks = []
    for f in resolved.spec.files:
        path = resolved.files.get(f.path)
        if path is None:
            continue
        digest = sha256_file(path)
        expected = f.sha256 if resolved.root == Path("<hf-cache>") else expected_hash(f, resolved.root)
        if expected is None:
            if resolved.root != Path("<hf-cache>"):
                record_hash(resolved.root, f.path, digest)
            checks.append(FileCheck(path, "recorded", digest, None))
        else:
            checks.append(FileCheck(path, "ok" if digest == expected else "mismatch", digest, expected))
    return checks


def check_digest(path: Path, digest: str, expected: str | None, name: str) -> None:
    """After a download: delete a file whose sha256 is wrong and say so."""
    if expected is not None and digest != expected:
        path.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"{path.name} of model '{name}' has sha256 {digest[:12]}…, expected {expected[:12]}…; "
            f"the file was deleted. Run `{download_command(name)}` again; if it repeats, the source changed"
        )
