"""The weight-free sketch styles and the `sketch()` API, on the real photos in demos/.

What a drawing must be: grey uint8 of the photo's size, mostly white paper, with its dark strokes
where the photo has edges. The HED styles are covered in test_hed.py.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from editanything.errors import InvalidInputError
from editanything.imageio import read_image
from editanything.sketch import STYLES, classical, needs_color, sketch, style_help, style_params

DEMOS = Path(__file__).resolve().parents[1] / "demos"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
CLASSICAL = ("pencil", "ink", "xdog")


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: read_image(DEMOS / f"{name}.jpg") for name in PHOTOS}


def gray_of(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def photo_edges(gray: np.ndarray, radius: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude of the photo, and its Canny edges grown by `radius` px."""
    smooth = cv2.GaussianBlur(gray, (0, 0), 1.0)
    magnitude = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    canny = cv2.Canny(smooth, 50, 150)
    near = cv2.dilate(canny, np.ones((2 * radius + 1,) * 2, np.uint8)) > 0
    return magnitude, near


def assert_drawing_of(drawing: np.ndarray, gray: np.ndarray, *, region: np.ndarray | None = None) -> None:
    """Mostly paper, and the dark strokes sit on the photo's edges (within `region` if given)."""
    assert drawing.shape == gray.shape and drawing.dtype == np.uint8
    paper = drawing >= 200
    assert paper.mean() > 0.6, f"only {paper.mean():.0%} of the drawing is paper"
    magnitude, near = photo_edges(gray)
    region = np.ones_like(paper) if region is None else region
    dark = (drawing < 128) & region
    assert dark.mean() > 0.005, "the drawing has no strokes"
    # Strokes scattered at random would give ratios of 1.
    on_edges = near[dark].mean() / near[region].mean()
    assert on_edges > 1.5, f"dark pixels are only {on_edges:.2f}x more likely near a photo edge than anywhere"
    contrast = magnitude[dark].mean() / magnitude[paper & region].mean()
    assert contrast > 1.5, f"the photo's gradient is only {contrast:.2f}x stronger under strokes than under paper"


# --- the API ---------------------------------------------------------------------------------------

def test_styles_and_colour_needs():
    assert STYLES == ("pencil", "ink", "xdog", "hed", "hed-pencil")
    assert [needs_color(s) for s in STYLES] == [False, False, False, True, True]
    for style in STYLES:
        params = style_params(style)
        # Numbers and switches, and the HED styles' runtime, which says how the network runs.
        assert params and all(isinstance(v, (int, float, bool)) or (k, v) == ("runtime", "auto") for k, v in params.items())
        assert ("runtime" in params) == style.startswith("hed")
        # Every parameter is documented in the style's help.
        assert all(name in style_help(style) for name in params)


@pytest.mark.parametrize("call", [
    lambda img: sketch(img, "charcoal"),
    lambda img: needs_color("charcoal"),
    lambda img: style_params("Pencil"),
])
def test_unknown_style_names_the_valid_ones(photos, call):
    with pytest.raises(InvalidInputError) as err:
        call(photos["chelsea"])
    assert all(style in str(err.value) for style in STYLES)


def test_unknown_parameter_names_the_valid_ones(photos):
    with pytest.raises(InvalidInputError) as err:
        sketch(photos["chelsea"], "pencil", sigma=3)
    message = str(err.value)
    assert "sigma" in message and all(name in message for name in style_params("pencil"))


@pytest.mark.parametrize("style, params", [
    ("pencil", {"blur": "soft"}), ("pencil", {"blur": -1}), ("pencil", {"blur": float("nan")}),
    ("pencil", {"shade": 1.5}), ("pencil", {"dark_offset": 2.5}), ("pencil", {"gamma": 0}),
    ("ink", {"denoise": "maybe"}), ("ink", {"block": 0}), ("ink", {"min_area": True}),
    ("xdog", {"k": 1.0}), ("xdog", {"phi": 0}), ("xdog", {"epsilon": -0.1}),
    ("hed", {"low": 0.6, "high": 0.5}), ("hed", {"width": 0}), ("hed", {"size": -1}),
    ("hed-pencil", {"pencil": 2}),
])
def test_invalid_parameter_values(photos, style, params):
    # Rejected before any model is loaded, so this holds without the HED weights too.
    with pytest.raises(InvalidInputError) as err:
        sketch(photos["chelsea"], style, **params)
    assert next(iter(params)) in str(err.value)


@pytest.mark.parametrize("image", [
    np.zeros((8, 8), np.float32), np.zeros((8, 8, 4), np.uint8), np.zeros(8, np.uint8),
    np.zeros((0, 8), np.uint8), [[0, 1], [2, 3]],
])
def test_invalid_images(image):
    with pytest.raises(InvalidInputError):
        sketch(image, "pencil")


@pytest.mark.parametrize("style", CLASSICAL)
def test_string_parameters_as_from_the_command_line(photos, style):
    gray = gray_of(photos["chelsea"])
    as_text = {name: str(value) for name, value in style_params(style).items()}
    assert np.array_equal(sketch(gray, style, **as_text), sketch(gray, style))


@pytest.mark.parametrize("style", CLASSICAL)
def test_grey_styles_draw_the_same_from_rgb_or_grey(photos, style):
    rgb = photos["coffee"]
    assert not needs_color(style)
    assert np.array_equal(sketch(rgb, style), sketch(gray_of(rgb), style))


# --- what the drawings look like ------------------------------------------------------------------

@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("style", ["pencil", "ink"])
def test_drawings_are_paper_with_strokes_on_edges(photos, style, name):
    rgb = photos[name]
    assert_drawing_of(sketch(rgb, style), gray_of(rgb))


@pytest.mark.parametrize("name", PHOTOS)
def test_xdog_strokes_on_edges_and_fills_only_dark_tones(photos, name):
    rgb = photos[name]
    gray = gray_of(rgb)
    drawing = sketch(rgb, "xdog")
    # Documented: tones darker than epsilon x median brightness fill with ink; elsewhere only edges.
    tone = cv2.GaussianBlur(gray, (0, 0), 4.0)
    fill_level = style_params("xdog")["epsilon"] * np.median(gray)
    assert_drawing_of(drawing, gray, region=tone > 1.5 * fill_level)
    deep = tone < 0.6 * fill_level
    if deep.mean() > 0.01:
        assert (drawing[deep] < 128).mean() > 0.8, "dark tones are not filled with ink"


def test_pencil_is_a_colour_dodge_with_the_blur_computed_small(photos):
    # dark_offset=0, shade=0, gamma=1: the plain dodge gray / blur(gray), blur at full size in float.
    for name in PHOTOS:
        gray = gray_of(photos[name])
        for image in (gray, cv2.resize(gray, (1023, 767), interpolation=cv2.INTER_CUBIC)):
            out = classical.pencil(image, dark_offset=0, shade=0, gamma=1.0).astype(np.float64)
            sigma = style_params("pencil")["blur"] * max(image.shape) / 1024
            blur = cv2.GaussianBlur(image.astype(np.float64), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
            reference = np.clip(image * 255.0 / np.maximum(blur, 1e-9), 0, 255)
            assert np.abs(out - reference).mean() < 1.5


def test_pencil_of_a_dark_square_on_white():
    image = np.full((200, 300), 255, np.uint8)
    image[60:140, 100:200] = 40
    out = sketch(image, "pencil", shade=0.0)
    assert (out[:30] == 255).all() and (out[:, :60] == 255).all()  # far from the square: bare paper
    assert out[70:130, 100:103].mean() < 100  # a dark stroke along the inside of the square's edge
    assert (out[70:130, 97:100] == 255).all()  # and none on the light side
    assert out[90:110, 140:160].min() > 200  # its flat inside: paper, not speckle (dark_offset)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(h=st.integers(1, 40), w=st.integers(1, 40), level=st.integers(0, 255))
def test_flat_images_of_any_size_are_blank_paper(h, w, level):
    flat = np.full((h, w), level, np.uint8)
    for style, params in (("pencil", {"shade": 0.0}), ("ink", {}), ("xdog", {})):
        out = sketch(flat, style, **params)
        assert out.shape == (h, w) and out.dtype == np.uint8
        assert (out == 255).all(), style


@settings(max_examples=25, deadline=None, derandomize=True)
@given(h=st.integers(1, 64), w=st.integers(1, 64), seed=st.integers(0, 2**32 - 1))
def test_any_small_image_gives_a_drawing_of_its_size(h, w, seed):
    noise = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    for style in CLASSICAL:
        out = sketch(noise, style)
        assert out.shape == (h, w) and out.dtype == np.uint8


def test_drawing_does_not_depend_on_resolution(photos):
    # Sizes are relative to the image: the same photo drawn at 2x and shrunk looks like the 1x drawing.
    gray = gray_of(photos["astronaut"])
    big = cv2.resize(gray, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    for style in ("pencil", "xdog"):
        small_drawing = sketch(gray, style).astype(np.float64)
        shrunk = cv2.resize(sketch(big, style), gray.shape[::-1], interpolation=cv2.INTER_AREA).astype(np.float64)
        assert np.corrcoef(small_drawing.ravel(), shrunk.ravel())[0, 1] > 0.8, style


# --- parameters do what their help says -----------------------------------------------------------

def darkness(image: np.ndarray) -> float:
    return float(255 - image.mean())


def test_pencil_parameters(photos):
    gray = gray_of(photos["coffee"])
    assert darkness(sketch(gray, "pencil", blur=12)) > darkness(sketch(gray, "pencil", blur=3))
    assert darkness(sketch(gray, "pencil", gamma=5)) > darkness(sketch(gray, "pencil", gamma=1.5))

    astronaut = gray_of(photos["astronaut"])
    # Large dark, flat areas (the black backdrop, the helmet), away from any edge.
    dark = cv2.GaussianBlur(astronaut, (0, 0), 6) < 40
    dark &= photo_edges(astronaut, radius=6)[1] == 0
    assert dark.mean() > 0.05
    plain = sketch(astronaut, "pencil", dark_offset=0, shade=0)
    robust = sketch(astronaut, "pencil", dark_offset=12, shade=0)
    # dark_offset: paper instead of the plain dodge's black speckle.
    assert (robust[dark] >= 200).mean() > 0.7
    assert (robust[dark] >= 200).mean() > (plain[dark] >= 200).mean() + 0.3
    assert robust[dark].std() < 0.6 * plain[dark].std()
    # shade: dark areas become grey shading, light areas stay as they were.
    shaded = sketch(astronaut, "pencil", dark_offset=12, shade=0.6)
    assert shaded[dark].mean() < robust[dark].mean() - 50
    bright = cv2.GaussianBlur(astronaut, (0, 0), 16) > 150
    assert np.abs(shaded[bright].astype(int) - robust[bright]).mean() < 2


def test_ink_parameters(photos):
    gray = gray_of(photos["astronaut"])
    default = sketch(gray, "ink")
    assert set(np.unique(default)) <= {0, 255}  # ink is pure black on white
    assert darkness(sketch(gray, "ink", offset=20)) < darkness(default) < darkness(sketch(gray, "ink", offset=3))
    min_area = 400
    cleaned = sketch(gray, "ink", min_area=min_area)
    n, _, stats, _ = cv2.connectedComponentsWithStats((cleaned == 0).astype(np.uint8), connectivity=8)
    scale = max(gray.shape) / 1024
    assert n > 1 and stats[1:, cv2.CC_STAT_AREA].min() >= min_area * scale ** 2
    n_default = cv2.connectedComponents((default == 0).astype(np.uint8), connectivity=8)[0]
    assert n < n_default
    noisy = np.clip(gray + np.random.default_rng(0).normal(0, 12, gray.shape), 0, 255).astype(np.uint8)
    denoised, raw = (sketch(noisy, "ink", denoise=flag, min_area=0) for flag in (True, False))
    assert darkness(denoised) < darkness(raw)


def test_xdog_parameters(photos):
    gray = gray_of(photos["coffee"])
    assert darkness(sketch(gray, "xdog", epsilon=0.8)) > darkness(sketch(gray, "xdog", epsilon=0.3))
    mid = lambda img: float(((img > 30) & (img < 225)).mean())  # noqa: E731
    assert mid(sketch(gray, "xdog", phi=100)) < mid(sketch(gray, "xdog", phi=3))
    # sigma is the line scale: a thin dark line on white is drawn wider with a larger sigma.
    line = np.full((100, 1024), 255, np.uint8)
    line[49:51] = 60
    width = {sigma: int((sketch(line, "xdog", sigma=sigma)[:, 500] < 128).sum()) for sigma in (1.0, 4.0)}
    assert 2 <= width[1.0] < width[4.0]


def test_the_package_level_call(photos):
    import editanything as ea

    rgb = photos["chelsea"]
    assert np.array_equal(ea.sketch(rgb, style="ink", block=20), sketch(rgb, "ink", block=20))
    assert np.array_equal(ea.sketch(rgb), sketch(rgb, "pencil"))
    assert ea.sketch.STYLES == ("pencil", "ink", "xdog", "hed", "hed-pencil")
