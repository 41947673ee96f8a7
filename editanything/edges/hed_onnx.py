"""HED's network quantized to int8 on ONNX Runtime: the `onnx-int8` runtime of `edges.hed`.

The fp32 network is exported to ONNX and quantized statically (QDQ; weights int8 per output channel,
activations uint8, so every machine makes the same graph from the four demo photos shipped in
`calibration/`). The trunk's activation ranges are their 99.999th percentile; the five 1x1 side outputs
take their full (min-max) range instead, since clipping a logit moves the lines. Only the side outputs'
fusion (the resizing to full size, the concatenation, the 1x1 fuse and the sigmoid) stays fp32. With the
side convolutions in int8 too, no full-size 64-channel activation is dequantized (and relaid out for an
fp32 convolution): a tenth less CPU time than with them in fp32, measured round robin, at the same lines.
Against fp32's lines (F within 2 px) on the demo photos natively and the benchmark's 1024x768 crops,
F >= 0.971 (0.974 with fp32 side outputs); on the demo photos scaled up to 1024 px, 0.954 (0.953; the
side outputs in int8 at percentile ranges: 0.945, min-max ranges everywhere: 0.939). The graph is made
once per weights file (its sha256 on disk), ONNX Runtime version, calibration photos and these settings
(`models.onnx_cache`), a minute or so, and then only loaded: a process whose graph is cached never imports
torch nor builds the torch network (two to three seconds of each batch worker's start), only a build does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import tempfile
import threading
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CALIBRATION = Path(__file__).with_name("calibration")
# Everything the quantized graph depends on besides the weights and ONNX Runtime: change it, get a new graph.
SETTINGS = ("v2 opset17 QDQ per-channel weights:QInt8 activations:QUInt8 percentile-99.999 side-outputs:min-max "
            "resize+fusion:fp32")
SIDE_OUTPUTS = tuple(f"/sides.{i}/Conv_output_0" for i in range(5))  # the export's names of the 1x1 side convs' outputs
CALIBRATION_SIZE = (640, 480)  # the percentile calibration stacks its inputs' activations: one shape for all

# (weights file, threads) → its session
_sessions: dict[tuple[str, int], object] = {}
_lock = threading.Lock()


def available() -> bool:
    """ONNX Runtime and onnx (its quantizer reads and writes graphs with it) are installed. Looked up, not imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def calibration_photos() -> list[np.ndarray]:
    import cv2

    from ..imageio import read_image

    return [cv2.resize(read_image(p), CALIBRATION_SIZE, interpolation=cv2.INTER_AREA)
            for p in sorted(CALIBRATION.glob("*.jpg"))]


def graph_name(weights: Path) -> str:
    """The cache's name for the int8 graph of the weights file `weights` (hashed, not loaded)."""
    import onnxruntime as ort

    from ..models.store import sha256_file

    h = hashlib.sha256(f"{SETTINGS} {CALIBRATION_SIZE} onnxruntime {ort.__version__} "
                       f"weights {sha256_file(weights)}".encode())
    for path in sorted(CALIBRATION.glob("*.jpg")):
        h.update(path.read_bytes())
    return f"hed-int8-{h.hexdigest()[:24]}.onnx"


def export_fp32(net, path: Path) -> None:
    """`net` as an fp32 ONNX graph at `path`, height and width free."""
    import torch

    from . import hed

    x = torch.from_numpy(hed.preprocess(np.zeros((96, 128, 3), np.uint8)))
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(net, x, str(path), input_names=["x"], output_names=["y"], opset_version=17, dynamo=False,
                          dynamic_axes={"x": {2: "h", 3: "w"}, "y": {2: "h", 3: "w"}})


def quantize(weights: Path) -> bytes:
    """The int8 graph of the weights file `weights` (see the module's docstring), serialized."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from . import hed

    log.info("quantizing HED to int8 for ONNX Runtime (once per weights, about a minute)")

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.inputs = iter({"x": hed.preprocess(p)} for p in calibration_photos())

        def get_next(self):
            return next(self.inputs, None)

    net = hed.load_network(weights, "cpu")
    with tempfile.TemporaryDirectory(prefix="hed-int8-") as tmp:
        fp32, prepared, int8 = (Path(tmp) / f for f in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        export_fp32(net, fp32)
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared))
        kept_fp32 = [n.name for n in graph.graph.node if n.op_type in ("Resize", "Concat", "Sigmoid") or n.name.startswith("/fuse/")]
        ranges = {name: [{"rmin": lo, "rmax": hi}] for name, (lo, hi) in side_output_ranges(graph).items()}
        quantize_static(str(prepared), str(int8), Photos(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=kept_fp32,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"TensorQuantOverrides": ranges})
        return int8.read_bytes()


def side_output_ranges(graph) -> dict[str, tuple[np.float32, np.float32]]:
    """The fp32 graph's side outputs (`SIDE_OUTPUTS`): the lowest and highest value each takes on the
    calibration photos."""
    import onnx
    import onnxruntime as ort

    from . import hed

    graph = onnx.ModelProto.FromString(graph.SerializeToString())  # a copy: the caller's stays as it is
    missing = set(SIDE_OUTPUTS) - {out for node in graph.graph.node for out in node.output}
    if missing:  # another exporter's names: the quantizer would silently clip them at percentiles
        raise ValueError(f"the exported graph has no tensor {sorted(missing)[0]}")
    graph.graph.output.extend(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in SIDE_OUTPUTS)
    run = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    seen = [run.run(list(SIDE_OUTPUTS), {"x": hed.preprocess(p)}) for p in calibration_photos()]
    return {name: (np.float32(min(s[i].min() for s in seen)), np.float32(max(s[i].max() for s in seen)))
            for i, name in enumerate(SIDE_OUTPUTS)}


def session(weights: Path, threads: int):
    """The int8 session of the weights file `weights` with `threads` intra-op threads (one per count, kept).

    Raises EditAnythingError (one line) when the graph is not cached and cannot be made (onnx or the
    quantizer missing pieces, an export that fails), InvalidInputError when `weights` is not HED's."""
    from ..errors import EditAnythingError, first_line
    from ..models.onnx_cache import cached_session

    def build() -> bytes:
        try:
            return quantize(weights)
        except EditAnythingError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever torch.onnx or the quantizer raise: one line
            raise EditAnythingError(f"HED's int8 graph could not be made from {Path(weights).name} "
                                    f"({type(exc).__name__}: {first_line(exc)}); use runtime nnpack or torch") from exc

    with _lock:
        key = (str(weights), threads)
        if key not in _sessions:
            _sessions[key] = cached_session(graph_name(weights), build, threads=threads, log=log)
        return _sessions[key]


def edge_map(weights: Path, x: np.ndarray, threads: int) -> np.ndarray:
    """The int8 network's edge map of a preprocessed input (1, 3, H, W) → (H, W) float32."""
    return session(weights, threads).run(None, {"x": x})[0][0, 0]
