"""`editanything segment IMAGE -o OUTDIR` (masks, overlay, detections.json) and `editanything caption IMAGE`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .. import masks as mask_ops
from ..errors import InvalidInputError
from ..imageio import encode_image, read_image, write_files_atomic
from ..overlay import overlay
from ..types import Detections
from .common import (add_matte_options, add_selection_options, detector_options, matte_backend, read_mask,
                     selection_prompt)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segment", help="select things by text, clicks or boxes and write their masks",
                       description="Writes one PNG mask per instance (mask_00.png, …), their union (mask.png), "
                                   "an overlay preview (overlay.png) and detections.json; with --matte also the "
                                   "union's alpha matte (alpha.png) and the cut-out subject (cutout.png, RGBA).")
    p.add_argument("image", metavar="IMAGE", help="the photo")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="folder for mask.png, mask_NN.png per instance, overlay.png and detections.json "
                        "(with --matte: alpha.png, cutout.png)")
    add_selection_options(p, mask=False)
    p.add_argument("--grow", type=float, default=0.0, metavar="PX", help="grow (or with a negative value shrink) masks")
    p.add_argument("--feather", type=float, default=0.0, metavar="PX", help="write soft masks feathered over PX")
    add_matte_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no library warnings or progress bars")
    p.set_defaults(run=run_segment)

    c = sub.add_parser("caption", help="describe a photo, or what a selection or mask covers (BLIP-2)")
    c.add_argument("image", metavar="IMAGE", help="the photo")
    add_selection_options(c)
    c.add_argument("--question", help='ask instead of describing, e.g. "what colour is the car?"')
    c.add_argument("-q", "--quiet", action="store_true", help="no library warnings or progress bars")
    c.set_defaults(run=run_caption)


def _editor(args: argparse.Namespace):
    from ..pipeline import Editor

    return Editor(detector=args.detector, segmenter=args.segmenter, detector_options=detector_options(args))


def _select(args: argparse.Namespace, image: np.ndarray) -> Detections:
    editor = _editor(args)
    prompt = selection_prompt(args)
    if not prompt.text:
        print(f"segmenter: {editor.segmenter.describe()}", file=sys.stderr)
    return editor.select(image, prompt, keep=args.keep, keep_phrases=args.keep_phrase)


def run_segment(args: argparse.Namespace) -> int:
    from ..matte import check_band, compute_matte, get_matter

    if args.matte_band is not None and not args.matte:
        raise InvalidInputError("--matte-band sets the width of --matte's band; add --matte")
    band = check_band(args.matte_band)
    backend = matte_backend(args) or "auto"
    image = read_image(args.image)
    # built before the selection, so a missing ViTMatte is named before the detector runs
    matter = get_matter(backend) if args.matte else None
    detections = _select(args, image)
    out = Path(args.output)
    if args.grow:
        grown = [mask_ops.grow(m, args.grow) for m in detections.masks]  # negative grows shrink
        detections = Detections(detections.xyxy, detections.scores, detections.phrases, np.stack(grown))
    files = {f"mask_{i:02d}.png": encode_image(_mask_png(mask, args.feather))
             for i, mask in enumerate(detections.masks)}
    files["mask.png"] = encode_image(_mask_png(detections.union_mask(), args.feather))
    files["overlay.png"] = encode_image(overlay(image, detections))
    if args.matte:
        matte = compute_matte(image, detections.union_mask(), matter, band=band)
        files["alpha.png"] = encode_image(matte.alpha_image(image.shape))
        files["cutout.png"] = encode_image(matte.cutout(image))
    files["detections.json"] = json.dumps(
        {"image": str(args.image), "size": [image.shape[1], image.shape[0]], "instances": detections.to_json()},
        indent=2).encode()
    write_files_atomic(out, files, inputs=(args.image,))  # all or nothing: a full disk leaves no half set
    for d in detections.to_json():
        print(f"{d['index']:2d}  {d['phrase']:24} score {d['score']:.2f}  box {d['box']}")
    matted = ", alpha.png, cutout.png" if args.matte else ""
    print(f"{len(detections)} instance(s); masks, overlay.png{matted} and detections.json in {out}")
    return 0


def _mask_png(mask: np.ndarray, feather: float) -> np.ndarray:
    if feather > 0:
        return np.rint(mask_ops.feather(mask, feather) * 255).astype(np.uint8)
    return mask.astype(np.uint8) * 255


def run_caption(args: argparse.Namespace) -> int:
    from ..caption import BLIP2_MODELS, get_captioner

    image = read_image(args.image)
    # Florence-2 answers no questions: a question goes to BLIP-2, whose prompt form this is.
    captioner = get_captioner(BLIP2_MODELS[0] if args.question else "auto")
    prompt = f"Question: {args.question} Answer:" if args.question else None
    if args.mask:
        print(captioner.caption(image, mask=read_mask(args.mask, image.shape[:2]), prompt=prompt))
        return 0
    selection = selection_prompt(args)
    if selection.is_empty():
        print(captioner.caption(image, prompt=prompt))
        return 0
    detections = _select(args, image)
    for i, text in enumerate(captioner.caption_regions(image, list(detections.masks), prompt=prompt)):
        print(f"{i:2d}  {detections.phrases[i]:24} {text}")
    return 0
