"""Files named by URI (`s3://…`, `gs://…`, `file://…`): listed, read and written through pyarrow.fs.

A local path stays a `pathlib.Path`; a URI becomes a `RemotePath`, which has the few `Path` methods
the batch planner and `imageio` use (name, stem, suffix, parent, `/`, with_name, resolve, exists), so
one code path serves both and both engines; `same_file` compares any two of them. pyarrow (it
comes with the `ray` extra) is imported only when a URI is given.
"""

from __future__ import annotations

import os
import pickle
import re
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Protocol, runtime_checkable

from .errors import ImageError, InvalidInputError, MissingDependency
from .multipart import MULTIPART_BYTES, temp_name

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# pyarrow's names of filesystems without an atomic rename: there one put of the whole file is atomic
OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})
_HINTS = {
    "s3": "check the bucket and the AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
          "AWS_PROFILE; AWS_ENDPOINT_URL for a store that is not AWS)",
    "gcs": "check the bucket and the Google credentials (GOOGLE_APPLICATION_CREDENTIALS)",
    "abfs": "check the container and the Azure credentials",
}
URI_HELP = "use a local path or a URI such as s3://BUCKET/FOLDER, gs://BUCKET/FOLDER or file:///FOLDER"


def is_uri(item: Any) -> bool:
    """Whether `item` is a URI string (`scheme://…`) rather than a local path."""
    return isinstance(item, str) and _SCHEME.match(item) is not None


@runtime_checkable
class Location(Protocol):
    """What the batch code asks of a place: a `pathlib.Path` and a `RemotePath` both are one."""

    @property
    def name(self) -> str: ...
    @property
    def stem(self) -> str: ...
    @property
    def suffix(self) -> str: ...
    @property
    def parent(self) -> Location: ...
    def __truediv__(self, relative: str | os.PathLike) -> Location: ...
    def with_name(self, name: str) -> Location: ...
    def resolve(self) -> Location: ...
    def exists(self) -> bool: ...


@dataclass(frozen=True)
class RemotePath:
    """A file or folder at `path` on the pyarrow filesystem `fs`; str() is its URI."""

    fs: Any = field(compare=False, repr=False)
    path: str
    prefix: str  # what turns `path` into the URI: "s3://", "file://"
    query: str = ""  # the URI's own options (endpoint_override=…), kept so the URI names the same place

    def __str__(self) -> str:
        return self.prefix + self.path + (f"?{self.query}" if self.query else "")

    def __reduce__(self):
        return _rebuild, (self.fs, self.path, self.prefix, self.query)

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.path).suffix

    @property
    def parent(self) -> RemotePath:
        return replace(self, path=str(PurePosixPath(self.path).parent))

    def __truediv__(self, relative: str | os.PathLike) -> RemotePath:
        return replace(self, path=f"{self.path.rstrip('/')}/{PurePosixPath(relative).as_posix()}")

    def with_name(self, name: str) -> RemotePath:
        return replace(self, path=str(PurePosixPath(self.path).with_name(name)))

    def resolve(self) -> Path | RemotePath:
        """Its identity: on this machine's disk (file://) the real path, so it matches a plain path to it."""
        here = self.local()
        return self if here is None else here.resolve()

    @property
    def kind(self) -> str:
        return self.fs.type_name

    def exists(self) -> bool:
        from pyarrow.fs import FileType

        return self.info().type != FileType.NotFound

    def local(self) -> Path | None:
        """The path on this machine's disk of a file:// location; None on any other store."""
        return Path(self.path) if self.kind == "local" else None

    def info(self):
        """pyarrow's FileInfo; InvalidInputError (one line, with what to check) when it can't be asked."""
        try:
            return self.fs.get_file_info(self.path)
        except OSError as exc:
            raise InvalidInputError(failure(self, "cannot read", exc)) from None

    def open_input(self):
        """The file, open for random-access reads (ranged GETs on an object store); OSError in one line."""
        try:
            return self.fs.open_input_file(self.path)
        except OSError as exc:
            raise OSError(_first_line(exc)) from None

    def read_bytes(self) -> bytes:
        """The file's bytes; OSError with a one-line reason."""
        try:
            with self.fs.open_input_file(self.path) as f:
                return f.read()
        except OSError as exc:
            raise OSError(_first_line(exc)) from None


def _rebuild(fs: Any, path: str, prefix: str, query: str) -> RemotePath:
    """One filesystem object per process and configuration, whatever the number of files sent, so a
    worker keeps its client, connections and credentials across files."""
    key = pickle.dumps(fs)
    if key not in _SHARED and fs.type_name == "s3":
        _finalize_s3_in_child()
    return RemotePath(_SHARED.setdefault(key, fs), path, prefix, query)


def _finalize_s3_in_child() -> None:
    """A pool process ends with os._exit, past pyarrow's atexit hook that shuts its S3 client down (else
    it warns of a crash at exit); multiprocessing's own exit hook runs first, so it does that there."""
    import multiprocessing
    from multiprocessing import util

    global _FINALIZER
    if multiprocessing.parent_process() is not None and _FINALIZER is None:
        from pyarrow.fs import finalize_s3

        _FINALIZER = util.Finalize(None, finalize_s3, exitpriority=0)


_SHARED: dict[bytes, Any] = {}
_FINALIZER = None


def location(item: str | os.PathLike | RemotePath) -> Path | RemotePath:
    """A local path as a Path, a URI as a RemotePath (InvalidInputError for a URI pyarrow can't open)."""
    if isinstance(item, RemotePath):
        return item
    return open_uri(item) if is_uri(item) else Path(item)


def same_file(a: str | os.PathLike | RemotePath, b: str | os.PathLike | RemotePath) -> bool:
    """Whether two existing locations (paths, URIs, RemotePaths, in any mix) are one file: on this
    machine's disk through links too (as `os.path.samefile`), on a store by the same URI."""
    a, b = location(a), location(b)
    here = [p if isinstance(p, Path) else p.local() for p in (a, b)]
    if None not in here:
        try:
            return os.path.samefile(*here)
        except OSError:  # one of them is not there: not the same file
            return False
    return here == [None, None] and a == b


def check_uris(items: Iterable[Any]) -> None:
    """Open every URI among `items` (no I/O but a region lookup): a bad one stops the job before anything
    is created."""
    for item in items:
        if is_uri(item):
            open_uri(item)


def open_uri(uri: str) -> RemotePath:
    """The filesystem and path a URI names (no I/O but a cloud store's region lookup)."""
    try:
        from pyarrow import ArrowException
        from pyarrow.fs import FileSystem
    except ImportError:
        raise MissingDependency(f"{uri}: URIs need pyarrow: pip install 'editanything[ray]'") from None
    head, _, query = uri.partition("?")
    scheme = _SCHEME.match(head).group(1).lower()
    options = query
    if scheme == "s3" and "allow_delayed_open" not in query:
        # lets pyarrow write a file under its 10 MiB part size with one PutObject, not a multipart
        # upload opened first (apache/arrow s3fs.cc, kMultiPartUploadThresholdSize)
        options = "&".join(filter(None, (query, "allow_delayed_open=true")))
    try:
        fs, path = FileSystem.from_uri(head + (f"?{options}" if options else ""))
    except (ArrowException, ValueError, OSError) as exc:
        raise InvalidInputError(f"{uri}: cannot open this URI ({_first_line(exc)}); {URI_HELP}") from None
    path = path.rstrip("/") or path
    from urllib.parse import unquote

    shown = unquote(head).rstrip("/")
    if not path or not shown.endswith(path):
        raise InvalidInputError(f"{uri}: names no bucket or folder; {URI_HELP}")
    return RemotePath(fs, path, shown[: len(shown) - len(path)], query)


def failure(target: RemotePath, what: str, exc: BaseException) -> str:
    """One line: which URI, what failed and pyarrow's reason, and what to check."""
    hint = _HINTS.get(target.kind, "check the URI")
    return f"{target}: {what} ({_first_line(exc)}); {hint}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return re.sub(r"\s*\(Request ID: [^)]*\)", "", text[0]) if text else type(exc).__name__


def unreadable_key(path: str) -> bool:
    """Whether an object key has an empty, "." or ".." part: listed as it is, but read as another key."""
    return any(part in ("", ".", "..") for part in path.split("/")[1:])


def list_images(root: RemotePath, suffixes: Iterable[str], skip: Any = None) -> list[RemotePath]:
    """The image files below the folder `root` (recursive, hidden files left out), sorted; files inside
    `skip` (the output folder) are left out unless it is `root` itself."""
    from pyarrow.fs import FileSelector, FileType

    try:
        infos = root.fs.get_file_info(FileSelector(root.path, recursive=True))
    except OSError as exc:
        raise InvalidInputError(failure(root, "cannot list this folder", exc)) from None
    suffixes = tuple(suffixes)
    below = (skip.path.rstrip("/") + "/") if isinstance(skip, RemotePath) and skip != root and \
        skip.prefix == root.prefix else None
    # The keys exactly as listed (PurePosixPath would turn "a//b" into "a/b", another key): see unreadable_key
    files = [i.path for i in infos if i.type == FileType.File and not i.base_name.startswith(".")
             and i.extension and f".{i.extension.lower()}" in suffixes and not (below and i.path.startswith(below))]
    return [replace(root, path=p) for p in sorted(files)]


def present(outputs: Iterable[RemotePath]) -> set[RemotePath]:
    """Which of `outputs` exist, listing each folder once (one request per 1,000 files on a bucket, not
    one per file)."""
    from pyarrow.fs import FileSelector, FileType

    folders: dict[RemotePath, set[RemotePath]] = {}
    for output in outputs:
        folders.setdefault(output.parent, set()).add(output)
    found = set()
    for folder, wanted in folders.items():
        try:
            infos = folder.fs.get_file_info(FileSelector(folder.path, allow_not_found=True))
        except OSError as exc:
            raise InvalidInputError(failure(folder, "cannot list this folder", exc)) from None
        names = {i.base_name for i in infos if i.type == FileType.File}
        found |= {o for o in wanted if o.name in names}
    return found


def stale_partials(folder: RemotePath, suffix: str) -> list[RemotePath]:
    """The temp files (`.NAME.PID.xxxx{suffix}`) in `folder`; none on object stores, which never get any."""
    from pyarrow.fs import FileSelector, FileType

    if folder.kind in OBJECT_STORES:
        return []
    try:
        infos = folder.fs.get_file_info(FileSelector(folder.path, allow_not_found=True))
    except OSError:
        return []
    return [replace(folder, path=i.path) for i in infos
            if i.type == FileType.File and i.base_name.startswith(".") and i.base_name.endswith(suffix)]


def write_atomic(target: RemotePath, data: bytes, temp_prefix: str, temp_suffix: str) -> None:
    """Write `data` so no reader ever sees half of it: one put on an object store (atomic there), else
    a temp file beside it (`temp_prefix`, random, `temp_suffix`) then a rename. ImageError naming the
    URI on failure."""
    fs = target.fs
    try:
        if target.kind == "s3" and len(data) >= MULTIPART_BYTES:
            _put_marked(target, data, temp_name(temp_prefix, temp_suffix))
            return
        if target.kind in OBJECT_STORES:
            stream = fs.open_output_stream(target.path)
            stream.write(data)
            stream.close()  # the put happens here; a killed writer never gets this far, so no object
            return
        fs.create_dir(target.parent.path, recursive=True)
        temp = target.with_name(temp_prefix + uuid.uuid4().hex[:8] + temp_suffix)
        try:
            with fs.open_output_stream(temp.path) as f:
                f.write(data)
            fs.move(temp.path, target.path)
        except BaseException:
            try:
                fs.delete_file(temp.path)
            except OSError:
                pass
            raise
    except OSError as exc:
        raise ImageError(failure(target, "cannot write", exc)) from None


def _put_marked(target: RemotePath, data: bytes, temp: str) -> None:
    """A multipart upload under a temp key marked as ours (see multipart.py), then one server-side copy
    into place: a killed writer leaves an upload a later run can tell from another writer's."""
    fs = target.fs
    temp_path = target.with_name(temp).path
    try:
        with fs.open_output_stream(temp_path) as stream:
            stream.write(data)
        fs.copy_file(temp_path, target.path)
    finally:
        try:
            fs.delete_file(temp_path)
        except OSError:
            pass


def check_writable(folder: RemotePath) -> RemotePath:
    """Prove a file can be written in `folder` (and removed again); ImageError naming it if not.

    Run before anything else, so a wrong bucket or missing credentials cost nothing.
    """
    probe = folder / f".editanything-write-check.{uuid.uuid4().hex}"
    try:
        if folder.kind not in OBJECT_STORES:
            folder.fs.create_dir(folder.path, recursive=True)
        stream = folder.fs.open_output_stream(probe.path)
        stream.write(b"")
        stream.close()
        folder.fs.delete_file(probe.path)
    except OSError as exc:
        raise ImageError(failure(folder, "cannot write here", exc)) from None
    return folder
