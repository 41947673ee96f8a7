"""Photo to sketch: a drawing on white paper (grey uint8, mostly 255, dark strokes on edges).

Classical styles (pencil, ink, xdog) need only OpenCV; the HED styles run the pretrained HED
edge detector (`editanything models download hed`) through PyTorch. The generative style
sd-lineart (`GENERATIVE_STYLES`) has Stable Diffusion 1.5 with a line-art ControlNet redraw the photo.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from typing import Any, Callable

import numpy as np

from ..errors import InvalidInputError
from ..generate.generated import Generated
from ..types import check_rgb
from ..edges import hed
from . import classical, generative, learned

STYLES: tuple[str, ...] = ("pencil", "ink", "xdog", "hed", "hed-pencil")
"""The drawing styles: fast, deterministic, a few megabytes of weights at most."""
GENERATIVE_STYLES: tuple[str, ...] = (generative.STYLE,)
"""Styles a diffusion model draws: seeded, gigabytes of weights, seconds to minutes per photo."""
ALL_STYLES: tuple[str, ...] = STYLES + GENERATIVE_STYLES

_STYLE_FUNCS: dict[str, Callable[..., np.ndarray]] = {
    "pencil": classical.pencil,
    "ink": classical.ink,
    "xdog": classical.xdog,
    "hed": hed.hed_lines,
    "hed-pencil": learned.hed_pencil,
    generative.STYLE: generative.sd_lineart,
}
_COLOR_STYLES = frozenset({"hed", "hed-pencil", generative.STYLE})
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _func(style: str) -> Callable[..., np.ndarray]:
    try:
        return _STYLE_FUNCS[style]
    except (KeyError, TypeError):
        raise InvalidInputError(f"unknown sketch style {style!r}; valid styles: {', '.join(ALL_STYLES)}") from None


def needs_color(style: str) -> bool:
    """True when the style looks at colour (HED); False when the grey image is enough."""
    _func(style)
    return style in _COLOR_STYLES


def is_generative(style: str) -> bool:
    """True for the styles a diffusion model draws (seeded; their models load once per process)."""
    _func(style)
    return style in GENERATIVE_STYLES


def style_params(style: str) -> dict[str, Any]:
    """The parameters `style` takes, with their defaults (their types are the accepted types)."""
    sig = inspect.signature(_func(style))
    return {name: p.default for name, p in sig.parameters.items() if p.kind is p.KEYWORD_ONLY}


def style_help(style: str) -> str:
    """The style's docstring: what it draws and what each parameter does."""
    return inspect.getdoc(_func(style)) or ""


def param_help(style: str) -> dict[str, str]:
    """What each parameter of `style` does, in its docstring's words (its `name: …` or `a/b: …` passages).

    A parameter the docstring only refers to elsewhere ("as in the pencil style") has no entry.
    """
    names = style_params(style)
    if not names:
        return {}
    text = " ".join(style_help(style).split("\n\n", 1)[1:]).replace("\n", " ")  # after the summary
    name = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    marks = list(re.finditer(rf"(?:^|(?<=\s))((?:{name})(?:/(?:{name}))*): ", text))
    out: dict[str, str] = {}
    for mark, end in zip(marks, [m.start() for m in marks[1:]] + [len(text)]):
        for each in mark.group(1).split("/"):
            out.setdefault(each, text[mark.end():end].strip())
    return out


def _coerce(style: str, name: str, value: Any, default: Any) -> Any:
    """`value` (e.g. a string from the command line) as the type of the default."""
    bad = InvalidInputError(
        f"sketch parameter {name}={value!r} of style {style!r} is not a valid {type(default).__name__}")
    if isinstance(default, str):
        if isinstance(value, (str, int, float)) and not isinstance(value, (bool, np.bool_)):
            return str(value)  # a command line reads "--param prompt=42" as a number
        raise bad
    if isinstance(default, bool):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise bad
    if isinstance(value, (bool, np.bool_)):
        raise bad
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise bad from None
    if not np.isfinite(number):
        raise bad
    if isinstance(default, int):
        if number != int(number):
            raise bad
        return int(number)
    return number


def check_params(style: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` checked against the style's (unknown names and bad values raise) and converted to their types."""
    defaults = style_params(style)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        valid = ", ".join(f"{k}={v}" for k, v in defaults.items())
        raise InvalidInputError(f"unknown parameter(s) {', '.join(unknown)} for sketch style {style!r}; "
                                f"valid: {valid}")
    return {k: _coerce(style, k, v, defaults[k]) for k, v in params.items()}


def check_values(style: str, params: dict[str, Any]) -> dict[str, Any]:
    """`check_params`, and the values' ranges too, without loading a model: a classical style draws a
    16 x 16 blank page, the HED styles check their settings; sd-lineart's are `generative.check_ready`'s."""
    kwargs = check_params(style, params)
    if style in ("hed", "hed-pencil"):
        learned.check_settings(**kwargs)
    elif style in STYLES:
        _func(style)(np.full((16, 16), 255, np.uint8), **kwargs)
    return kwargs


def resolve_params(style: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` checked, with what a drawing depends on made concrete, for its recipe: the HED styles'
    runtime ("auto" becomes the one that runs here, its network made ready). A generative style's are `generative.resolve_params`'."""
    kwargs = check_params(style, params)
    if style in ("hed", "hed-pencil"):
        kwargs["runtime"] = hed.resolve_runtime(kwargs.get("runtime", "auto"))
    return kwargs


def drawing_models(style: str) -> dict[str, dict[str, Any]]:
    """The model files a (non-generative) style draws with, for its recipe: HED's weights file and its sha256."""
    if style not in ("hed", "hed-pencil"):
        return {}
    return {"hed": {"file": hed.weights_file().name, "sha256": hed.weights_sha256()}}


def sketch(image: np.ndarray, style: str = "pencil", **params: Any) -> np.ndarray:
    """Draw `image` (RGB uint8 (H, W, 3) or grey (H, W)) in `style`: grey uint8 (H, W) on white.

    `params` are the style's parameters (see `style_params`); strings are converted, so values
    from a command line can be passed as they are. The HED and generative styles load their models
    once per process.
    """
    drawn = _draw(image, style, params)
    return drawn.images[0] if style in GENERATIVE_STYLES else drawn


def sketch_generated(image: np.ndarray, style: str, **params: Any) -> Generated:
    """A generative style's drawing with what made it (seed, threads, models), for its recipe."""
    if not is_generative(style):
        raise InvalidInputError(f"sketch style {style!r} is not generative: use sketch()")
    return _draw(image, style, params)


def _draw(image: np.ndarray, style: str, params: dict[str, Any]) -> Any:
    func = _func(style)
    kwargs = check_params(style, params)
    image = check_rgb(image, gray=True)
    if style in _COLOR_STYLES:
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3:
        import cv2

        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return func(image, **kwargs)


class _CallableModule(types.ModuleType):
    """Lets `editanything.sketch(image, style=...)` call `sketch` while `editanything.sketch.STYLES` still works."""

    def __call__(self, image: np.ndarray, style: str = "pencil", **params: Any) -> np.ndarray:
        return sketch(image, style, **params)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["ALL_STYLES", "GENERATIVE_STYLES", "STYLES", "check_params", "check_values", "drawing_models", "is_generative",
           "needs_color", "resolve_params", "sketch", "sketch_generated", "style_help", "style_params"]

