"""Argument types and options shared by the commands that select things in a photo."""

from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from ..imageio import read_mask as load_mask
from ..storage import is_uri
from ..types import Prompt


def _model_help() -> str:
    from ..generate import list_generators

    local = [n for n in list_generators() if n not in ("auto", "stability", "openai")]
    return (f"{', '.join(local)}, a diffusers folder, a .safetensors file or a LaMa or MI-GAN .onnx file; auto = the "
            "best present for the device (FLUX.2 klein, then SDXL, on CUDA; SD 1.5 on a CPU), else classical")


MODEL_HELP = _model_help()
"""What --model takes: today's registered local generators (from the registry, so the list cannot go stale)."""


def _numbers(text: str, what: str, count: tuple[int, ...]) -> list[float]:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) not in count:
        raise argparse.ArgumentTypeError(f"{what} expects {' or '.join(map(str, count))} comma-separated numbers; got {text!r}")
    return values


def point(text: str) -> tuple[float, float, int]:
    """`x,y` (positive click) or `x,y,0|1`."""
    values = _numbers(text, "--point", (2, 3))
    label = int(values[2]) if len(values) == 3 else 1
    if label not in (0, 1):
        raise argparse.ArgumentTypeError(f"--point label must be 1 (positive) or 0 (negative); got {text!r}")
    return values[0], values[1], label


def box(text: str) -> tuple[float, float, float, float]:
    """`x0,y0,x1,y1` in pixels."""
    x0, y0, x1, y1 = _numbers(text, "--box", (4,))
    if x1 <= x0 or y1 <= y0:
        raise argparse.ArgumentTypeError(f"--box needs x1 > x0 and y1 > y0; got {text!r}")
    return x0, y0, x1, y1


def indices(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--keep expects instance indices like 0,2; got {text!r}") from None


def add_selection_options(p: argparse.ArgumentParser, *, mask: bool = True) -> None:
    g = p.add_argument_group("what to select")
    g.add_argument("--select", metavar="TEXT", help='a phrase for the detector, e.g. "the dog" or "dog . red car"')
    g.add_argument("--point", type=point, action="append", default=[], metavar="X,Y[,L]",
                   help="a click; L=1 positive (default), 0 negative; repeatable")
    g.add_argument("--box", type=box, action="append", default=[], metavar="X0,Y0,X1,Y1", help="a box; repeatable")
    if mask:
        g.add_argument("--mask", metavar="PNG", help="use this mask instead of selecting (white = selected; "
                                                        "in a PNG with transparency, its opaque part)")
    g.add_argument("--keep", type=indices, metavar="I,J", help="keep only these instances (0-based, see detections.json)")
    g.add_argument("--keep-phrase", action="append", metavar="PHRASE", help="keep only instances whose phrase matches")
    g.add_argument("--segmenter", default="auto", help="edgetam, sam2.1-hiera-tiny/-small/-base-plus/-large, sam-vit-b/-l/-h, sam3, grabcut, or auto (on a CPU the fastest on disk, on a GPU the best)")
    g.add_argument("--detector", default="auto", help="llmdet-tiny, grounding-dino-tiny/-base, groundingdino-swint-ogc/-swinb, sam3, "
                   "or auto (the first of these on disk); also mm-grounding-dino-tiny (by name only)")
    g.add_argument("--box-threshold", type=float, default=0.35, help="detector box score threshold (default 0.35)")
    g.add_argument("--text-threshold", type=float, default=0.25, help="detector phrase threshold (default 0.25)")


def selection_prompt(args: argparse.Namespace) -> Prompt:
    return Prompt(points=list(args.point), boxes=list(args.box), text=args.select)


def detector_options(args: argparse.Namespace) -> dict:
    return {"box_threshold": args.box_threshold, "text_threshold": args.text_threshold}


def read_mask(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file as bool (white or any bright pixel = selected; with transparency, the opaque pixels)."""
    mask = load_mask(path)
    if shape is not None and mask.shape != shape:
        raise InvalidInputError(f"{path}: the mask is {mask.shape[1]}x{mask.shape[0]}, the image "
                                f"{shape[1]}x{shape[0]}; they must be the same size")
    if not mask.any():
        raise InvalidInputError(f"{path}: the mask is empty (no white pixels)")
    return mask


def add_matte_options(group, when: str = "") -> None:
    """--matte, --matte-band and --matte-backend, shared by edit and segment."""
    group.add_argument("--matte", action="store_true",
                       help=f"{when}soft edges: an alpha matte of the selection's edge (hair, fur, glass) with "
                            "the subject's own colours there, no halo of the old background")
    group.add_argument("--matte-band", type=float, metavar="PX",
                       help="width of the matte's unknown band on each side of the edge (default: 3.5%% of the "
                            "object's size, 3..64 px)")
    group.add_argument("--matte-backend", metavar="NAME",
                       help="what solves the band: pymatting-fast (closed-form matting, fast solve, no weights), "
                            "pymatting (the same, solved exactly: slower), vitmatte-small (ViTMatte, 103 MB), or "
                            "auto (default: ViTMatte when its weights are on disk, else pymatting-fast)")


def matte_backend(args) -> str | None:
    """--matte-backend's name checked before anything loads (None when not given)."""
    from ..matte import check_matter

    if args.matte_backend is None:
        return None
    if not args.matte:
        raise InvalidInputError("--matte-backend picks what solves --matte's band; add --matte")
    return check_matter(args.matte_backend)


def check_inputs_exist(items: list[str]) -> None:
    """A named file or folder that isn't there, or a pattern matching nothing, is a usage error up front
    (a URI is looked at when its folder is listed)."""
    for item in items:
        text = str(item)
        if is_uri(text) or os.path.lexists(text):
            continue
        if glob.has_magic(text):
            if not glob.glob(text, recursive=True):
                raise InvalidInputError(f"{text}: no file matches this pattern")
        else:
            raise InvalidInputError(f"{text}: no such file or folder")
