"""ONNX graphs made from loaded weights (exported, maybe quantized), cached on disk, run on ONNX Runtime.

Making a graph takes seconds to a minute, so it is done once per key and kept in $EDITANYTHING_CACHE
(default $EDITANYTHING_HOME/cache); later starts only load it. The key names everything the graph
depends on (the weights' sha256, the library versions, the export's settings), so a change makes a
new graph rather than reusing a stale one. Written through a temp file and a rename: two processes
making the same graph at once each write a whole file, and the last rename wins."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Callable

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
    serialized bytes) when the cache has no loadable copy. A damaged cache file is made again; a
    read-only cache only costs the build at the next start. Raises whatever `build` raises."""
    import onnxruntime as ort

    from ..imageio import write_bytes_atomic

    path = (cache_dir or default_cache_dir()) / name
    options = session_options(threads)
    if path.is_file():
        try:
            return ort.InferenceSession(path.read_bytes(), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - a damaged cache entry is made again
            log.warning("making %s again: the cached file does not load (%s)", path.name, first_line(exc))
    graph = build()
    try:
        write_bytes_atomic(path, graph)
    except Exception as exc:  # noqa: BLE001 - ImageError or OSError: the graph still runs from memory
        log.warning("could not cache %s in %s: %s", path.name, path.parent, first_line(exc))
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
