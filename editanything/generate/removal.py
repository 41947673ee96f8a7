"""Learned object removal on ONNX Runtime: LaMa (big-lama) and MI-GAN, the published ONNX exports.

Both fill a hole from its surroundings without a prompt, as OpenCV's Telea does, but with what a
network learnt from millions of photos instead of smeared border colours. They implement the
`Generator` protocol and run on the crop compose.py hands them (outside-mask pixels stay
bit-exact there); each adapts that crop to its export's contract:

- `lama` (Carve/LaMa-ONNX `lama_fp32.onnx`): inputs `image` float32 [1, 3, 512, 512] in [0, 1] and
  `mask` float32 [1, 1, 512, 512], 1 = hole; output `output` float32 [1, 3, 512, 512] in [0, 255].
  The crop is scaled to fit 512 px (aspect kept), reflect-padded to the square, and scaled back.
- `migan` (andraniksargsyan/migan `migan_pipeline_v2.onnx`): inputs `image` uint8 [1, 3, H, W] and
  `mask` uint8 [1, 1, H, W], 255 = known, 0 = hole; output `result` uint8 [1, 3, H, W]. The graph
  crops, resizes to 512 and blends by itself, so it gets the crop as it is.

Only the hole's pixels are taken from the network: the rest of the crop is the input's own.
`onnxruntime` is imported when a model first runs (extra `remove`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from ..errors import InvalidInputError, ModelNotFound, first_line, require
from ..registry import Registry
from ..types import GenerationParams, check_mask, check_rgb
from .generated import Generated, changed, finite


class OnnxRemover:
    """Base of the ONNX removers: loads the session once, checks the export's inputs, fills holes.

    model: a manifest name ("lama", "migan") or the path of an `.onnx` file with the same inputs
    and outputs. providers: ONNX Runtime execution providers (default: CUDA when the installed
    runtime has it, else CPU). threads: intra-op threads (default: ONNX Runtime's, one per core).
    """

    works_at_any_size = True  # an ONNX Runtime session runs from many threads at once: shareable as it is
    takes_prompt = False
    kind = ""  # the manifest name, also the contract the file must follow
    inputs: dict[str, str] = {}  # input name -> ONNX element type
    output = ""

    def __init__(self, model: str | os.PathLike | None = None, *, providers: list[str] | None = None,
                 threads: int | None = None):
        self.path, self.model_name = _resolve(model or self.kind, self.kind)
        self.providers, self.threads = providers, threads
        self._session = None
        self._loading = threading.Lock()

    @property
    def name(self) -> str:
        return self.model_name

    def describe(self) -> str:
        return f"{self.name} ({self.path.name} on ONNX Runtime)"

    def load(self):
        """The ONNX Runtime session (built on first use); ModelNotFound when the file is not this model's export."""
        with self._loading:
            if self._session is None:
                self._session = self._open()
            return self._session

    def _open(self):
        session = _open_session(self.path, self.kind, self.providers, self.threads)
        got = {i.name: i.type for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        if got != self.inputs or self.output not in outputs:
            want = ", ".join(f"{k} ({v})" for k, v in self.inputs.items())
            raise ModelNotFound(f"{self.path.name} is not a {self.kind} export: it takes "
                                f"{', '.join(f'{k} ({v})' for k, v in got.items())} and gives {', '.join(outputs)}; "
                                f"expected {want} -> {self.output}")
        return session

    def fill(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The network's RGB uint8 image the size of `image` (its pixels outside `mask` are not used)."""
        raise NotImplementedError

    def inpaint(self, image: np.ndarray, mask: np.ndarray, params: GenerationParams | None = None) -> Generated:
        """The hole filled by the network, the rest of `image` untouched; the same image for every one asked."""
        image = check_rgb(image)
        mask = check_mask(mask, image.shape)
        params = params or GenerationParams()
        out = image.copy()
        if mask.any():
            out[mask] = self.fill(image, mask)[mask]
        images = changed(image, [out.copy() for _ in range(params.n_images)], self.name)
        return Generated(images, model=self.model_info())

    def model_info(self) -> dict[str, Any]:
        import importlib.metadata

        from ..models.store import cached_sha256

        sha = cached_sha256(self.path)  # the file that ran, not the manifest's pin
        try:
            runtime = importlib.metadata.version("onnxruntime")
        except importlib.metadata.PackageNotFoundError:
            runtime = None
        return {"name": self.name, "file": str(self.path), "format": "onnx", "sha256": sha,
                "hash": sha[:10], "onnxruntime": runtime}

    def release(self) -> None:
        self._session = None


class LamaRemover(OnnxRemover):
    """LaMa (big-lama, Apache-2.0) from the Carve/LaMa-ONNX export, fixed at 512x512 by default."""

    kind = "lama"
    inputs = {"image": "tensor(float)", "mask": "tensor(float)"}
    output = "output"

    def _side(self, session) -> int | None:
        """The export's fixed square side, or None when its height and width are dynamic."""
        shape = session.get_inputs()[0].shape
        return shape[2] if isinstance(shape[2], int) and shape[2] == shape[3] else None

    def fill(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        session = self.load()
        h, w = mask.shape
        side = self._side(session)
        if side is None:
            # A dynamic export: run at the crop's size, padded to the multiple of 8 its downsamplings need.
            size, (th, tw) = (w, h), (-(-h // 8) * 8, -(-w // 8) * 8)
        else:
            scale = side / max(h, w)
            size, (th, tw) = (max(1, round(w * scale)), max(1, round(h * scale))), (side, side)
        small = _resize(image, size)
        hole = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0 if size != (w, h) else mask
        pad = ((0, th - small.shape[0]), (0, tw - small.shape[1]))
        # Reflected context, not black borders, for the part of the square the crop does not fill.
        small = np.pad(small, (*pad, (0, 0)), mode="reflect" if min(small.shape[:2]) > 1 else "edge")
        hole = np.pad(hole, pad)
        feed = {"image": (small.astype(np.float32) / 255.0).transpose(2, 0, 1)[None],
                "mask": hole.astype(np.float32)[None, None]}
        pred = finite(session.run([self.output], feed)[0][0], self.name).transpose(1, 2, 0)
        pred = np.clip(np.round(pred), 0, 255).astype(np.uint8)[: size[1], : size[0]]
        return _resize(np.ascontiguousarray(pred), (w, h))


class MiganRemover(OnnxRemover):
    """MI-GAN (MIT) from its authors' ONNX pipeline, which crops, fills at 512 and blends at any size."""

    kind = "migan"
    inputs = {"image": "tensor(uint8)", "mask": "tensor(uint8)"}
    output = "result"

    def fill(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        session = self.load()
        feed = {"image": np.ascontiguousarray(image.transpose(2, 0, 1))[None],
                "mask": np.where(mask, 0, 255).astype(np.uint8)[None, None]}
        return np.ascontiguousarray(session.run([self.output], feed)[0][0].transpose(1, 2, 0))


CLASSES: dict[str, type[OnnxRemover]] = {"lama": LamaRemover, "migan": MiganRemover}


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    shrinking = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def _open_session(path: Path, kind: str, providers: list[str] | None = None, threads: int | None = None,
                  optimize: bool = True):
    """An ONNX Runtime session of `path` (CUDA first when the runtime has it); ModelNotFound for an unreadable file."""
    ort = require("onnxruntime", "remove")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    available = ort.get_available_providers()
    providers = providers or [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
        fix = f"fetch it again with: editanything models download {kind}" if kind else "check the file"
        raise ModelNotFound(f"{path}: not a loadable ONNX model ({first_line(exc)}); {fix}") from exc


def onnx_kind(path: str | os.PathLike) -> str:
    """Which remover an `.onnx` file is ("lama" or "migan"), told by its graph's inputs: LaMa's export
    takes float32 image and mask, MI-GAN's pipeline uint8 ones."""
    path, _ = _resolve(path, "remover")
    # only the inputs are read: an unoptimised session is the cheapest way ONNX Runtime builds one
    got = {i.name: i.type for i in _open_session(path, "", ["CPUExecutionProvider"], optimize=False).get_inputs()}
    for kind, cls in CLASSES.items():
        if got == cls.inputs:
            return kind
    known = "; ".join(f"{kind}: {', '.join(f'{k} ({v})' for k, v in cls.inputs.items())}" for kind, cls in CLASSES.items())
    raise ModelNotFound(f"{path.name} is not a remover export this tool knows: it takes "
                        f"{', '.join(f'{k} ({v})' for k, v in got.items())}; expected {known}")


def _resolve(model: str | os.PathLike, kind: str) -> tuple[Path, str]:
    """The .onnx file and the name the recipe records."""
    from ..models import MODELS, resolve

    if isinstance(model, str) and model in MODELS:
        spec = MODELS[model]
        if spec.kind != "remover":
            raise InvalidInputError(f"model {model!r} is a {spec.kind}, not a remover (LaMa or MI-GAN)")
        return resolve(model).path(), model
    path = Path(model).expanduser()
    if path.is_file() and path.suffix.lower() == ".onnx":
        return path, kind
    raise ModelNotFound(f"no {kind} model {str(model)!r}: not a known model name nor an existing .onnx file")


def _onnx_file(name: str | os.PathLike) -> Callable[..., OnnxRemover] | None:
    """An `.onnx` file: LaMa or MI-GAN as its graph's inputs say, unless `kind=` says."""
    path = Path(name).expanduser()
    if not (path.is_file() and path.suffix.lower() == ".onnx"):
        return None

    def build(kind: str | None = None, **kwargs: Any) -> OnnxRemover:
        kind = kind or onnx_kind(path)
        if kind not in CLASSES:
            raise InvalidInputError(f"unknown remover kind {kind!r}; choose one of: {', '.join(CLASSES)}")
        return CLASSES[kind](str(path), **kwargs)

    return build


REMOVERS: Registry[OnnxRemover] = Registry("remover", dict(CLASSES), order=tuple(CLASSES), fallback=_onnx_file)
"""The removers by manifest name, best fill first (LaMa's Fourier convolutions carry structure across big
holes), or an `.onnx` file."""


def best_remover() -> str | None:
    """The name of the best remover whose weights are on disk, or None."""
    return REMOVERS.pick()


def get_remover(name: str | os.PathLike, **kwargs: Any) -> OnnxRemover:
    """A remover by manifest name, or an `.onnx` file: LaMa or MI-GAN as its inputs say (or as `kind=` says)."""
    return REMOVERS.get(name, **kwargs)
