"""ONNX graphs made from loaded weights (exported, maybe quantized), cached on disk, run on ONNX Runtime.

Making a graph takes seconds to a minute, so it is done once per key and kept in $EDITANYTHING_CACHE
(default $EDITANYTHING_HOME/cache); later starts only load it. The key names everything the graph
depends on (the weights' sha256, the library versions, the export's settings), so a change makes a
new graph rather than reusing a stale one. One process makes a graph at a time (a lock file), and it is
written through a temp file and a rename, so no process ever reads half a file."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import first_line
from .store import cache_dir as default_cache_dir


def state_sha256(module: Any, *extra: Any) -> str:
    """sha256 of a torch module's weights (names, shapes, dtypes and bytes) and of `extra` (strings,
    or tensors such as a fixed input the graph bakes in)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(repr((tuple(tensor.shape), str(tensor.dtype))).encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for item in extra:
        h.update(item.encode() if isinstance(item, str) else item.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def session_options(threads: int):
    """CPU session options: `threads` intra-op threads that sleep between calls."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # Spinning worker threads would keep the cores busy after each call, slowing whatever shares them
    # (the UI's overlay drawing and web server, the other batch workers).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def cached_session(name: str, build: Callable[[], bytes], *, threads: int, log: logging.Logger,
                   cache_dir: Path | None = None):
    """An ONNX Runtime CPU session of the graph `name` (a file name in the cache), made by `build` (its
    serialized bytes) when the cache has no loadable copy. One process builds at a time (a lock file
    beside it): a batch's workers starting together would otherwise each build the same graph, each
    with its memory peak (gigabytes for a quantization's calibration), and then all but one wait and
    load it. A damaged cache file is made again; a read-only cache only costs the build at the next
    start. Raises whatever `build` raises."""
    import onnxruntime as ort

    from ..imageio import write_bytes_atomic

    path = (cache_dir or default_cache_dir()) / name
    options = session_options(threads)

    def load():
        try:
            return ort.InferenceSession(path.read_bytes(), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - a damaged cache entry is made again
            log.warning("making %s again: the cached file does not load (%s)", path.name, first_line(exc))
            return None

    seen = _stat(path)
    session = load() if seen else None
    if session is not None:
        return session
    with _exclusive(path.with_name(f".{name}.lock")):
        now = _stat(path)
        if now is not None and now != seen:  # another process made it while this one waited
            session = load()
            if session is not None:
                return session
        graph = build()
        try:
            write_bytes_atomic(path, graph)
        except Exception as exc:  # noqa: BLE001 - ImageError or OSError: the graph still runs from memory
            log.warning("could not cache %s in %s: %s", path.name, path.parent, first_line(exc))
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _stat(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock` (created if need be); without one (a read-only cache, no fcntl),
    go on unlocked: the writes are atomic anyway, only the work may be done twice."""
    try:
        import fcntl

        lock.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock, "a+b")  # noqa: SIM115 - closed below, after the unlock
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
    finally:
        f.close()  # closing the file releases the lock
