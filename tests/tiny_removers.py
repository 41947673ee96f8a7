"""Tiny random ONNX networks with the inputs, outputs, shapes and value ranges of the real removal exports.

- `save_tiny_lama(path)`: like Carve/LaMa-ONNX `lama_fp32.onnx`: `image` float32 [1, 3, 512, 512]
  in [0, 1], `mask` float32 [1, 1, 512, 512] (1 = hole) -> `output` float32 [1, 3, 512, 512] in
  [0, 255]. Inside: the masked image and the mask, two 3x3 convolutions, a sigmoid times 255.
- `save_tiny_migan(path)`: like `migan_pipeline_v2.onnx`: `image` uint8 [N, 3, H, W], `mask` uint8
  [N, 1, H, W] (255 = known, 0 = hole) -> `result` uint8 [N, 3, H, W], any size. Inside: the
  pipeline's own normalisation, two convolutions with a tanh, and its blend (known pixels kept).
Built with `onnx.helper` from a fixed seed; both run in milliseconds on ONNX Runtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 0


def _conv(name: str, rng: np.random.Generator, cin: int, cout: int, source: str, out: str):
    from onnx import helper, numpy_helper

    weight = numpy_helper.from_array((rng.standard_normal((cout, cin, 3, 3)) * 0.4).astype(np.float32), f"{name}_w")
    bias = numpy_helper.from_array((rng.standard_normal(cout) * 0.1).astype(np.float32), f"{name}_b")
    node = helper.make_node("Conv", [source, f"{name}_w", f"{name}_b"], [out], pads=[1, 1, 1, 1])
    return node, [weight, bias]


def _scalar(name: str, value: float):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.array(value, np.float32), name)


def _save(nodes, inputs, outputs, initializers, path: Path, opset: int) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def save_tiny_lama(path: Path, side: int = 512) -> Path:
    from onnx import TensorProto, helper

    rng = np.random.default_rng(SEED)
    c1, w1 = _conv("c1", rng, 4, 8, "x", "h")
    c2, w2 = _conv("c2", rng, 8, 3, "hr", "y")
    nodes = [
        helper.make_node("Sub", ["one", "mask"], ["keep"]),
        helper.make_node("Mul", ["image", "keep"], ["masked"]),
        helper.make_node("Concat", ["masked", "mask"], ["x"], axis=1),
        c1, helper.make_node("Relu", ["h"], ["hr"]), c2,
        helper.make_node("Sigmoid", ["y"], ["ys"]),
        helper.make_node("Mul", ["ys", "k255"], ["output"]),
    ]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, side, side]),
              helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, side, side])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, side, side])]
    return _save(nodes, inputs, outputs, [*w1, *w2, _scalar("one", 1.0), _scalar("k255", 255.0)], path, 17)


def save_tiny_migan(path: Path) -> Path:
    from onnx import TensorProto, helper

    rng = np.random.default_rng(SEED + 1)
    c1, w1 = _conv("c1", rng, 4, 8, "x", "h")
    c2, w2 = _conv("c2", rng, 8, 3, "hr", "y")
    nodes = [
        helper.make_node("Cast", ["image"], ["img"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["mask"], ["m255"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["m255", "k255"], ["m"]),
        helper.make_node("Mul", ["img", "k2_255"], ["img2"]),
        helper.make_node("Sub", ["img2", "one"], ["norm"]),
        helper.make_node("Sub", ["m", "half"], ["mc"]),
        helper.make_node("Mul", ["norm", "m"], ["known"]),
        helper.make_node("Concat", ["mc", "known"], ["x"], axis=1),
        c1, helper.make_node("Relu", ["h"], ["hr"]), c2,
        helper.make_node("Tanh", ["y"], ["t"]),
        helper.make_node("Mul", ["t", "half"], ["t1"]),
        helper.make_node("Add", ["t1", "half"], ["t2"]),
        helper.make_node("Mul", ["t2", "k255"], ["fill"]),
        helper.make_node("Mul", ["img", "m"], ["a"]),
        helper.make_node("Sub", ["one", "m"], ["hole"]),
        helper.make_node("Mul", ["fill", "hole"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["blend"]),
        helper.make_node("Clip", ["blend", "zero", "k255"], ["clipped"]),
        helper.make_node("Cast", ["clipped"], ["result"], to=TensorProto.UINT8),
    ]
    inputs = [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", 3, "height", "width"]),
              helper.make_tensor_value_info("mask", TensorProto.UINT8, ["batch", 1, "height", "width"])]
    outputs = [helper.make_tensor_value_info("result", TensorProto.UINT8, ["batch", 3, "height", "width"])]
    consts = [_scalar("one", 1.0), _scalar("half", 0.5), _scalar("zero", 0.0), _scalar("k255", 255.0),
              _scalar("k2_255", 2.0 / 255.0)]
    return _save(nodes, inputs, outputs, [*w1, *w2, *consts], path, 12)
