"""Clicks and boxes to masks: EdgeTAM / SAM 2.1 / SAM / SAM 3's tracker when their weights are present, GrabCut otherwise.

`get_segmenter("auto")` picks, among the models on disk, the fast ones (`CPU_FIRST`) on a CPU and
the most accurate one on a GPU (`auto_order`), else GrabCut, whose `describe()` then says which
command fetches a model. Importing this package loads neither torch, transformers nor segment_anything.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

from ..errors import InvalidInputError
from ..models import download_command, find_model
from ..registry import Registry, for_model, on_disk
from ..types import RefineSeed
from .base import Segmenter
from .grabcut import GrabCutSegmenter
from .sam import SAM_VARIANTS, SamSegmenter, register_sam_variant
from .sam2_hf import Sam2Segmenter

log = logging.getLogger(__name__)

SAM_MODELS = ("sam-vit-h", "sam-vit-l", "sam-vit-b")  # best first
SAM2_MODELS = ("sam2.1-hiera-large", "sam2.1-hiera-base-plus", "sam2.1-hiera-small", "sam2.1-hiera-tiny")  # best first
# The first click on a 2-core CPU (benchmarks/first_click.py, quiet machine): EdgeTAM 0.72-0.79 s,
# SAM 2.1 Hiera-Tiny 2.4 s, SAM vit_b 13.5-17 s. On a CPU auto tries these first, in this order.
FAST_SEGMENTER = "edgetam"
CPU_FIRST = (FAST_SEGMENTER, "sam2.1-hiera-tiny")


def get_segmenter(name: str = "auto", **kwargs: Any) -> Segmenter:
    """Build a segmenter by name; "auto" is the first of `auto_candidates()` on disk, else GrabCut saying why.

    With "auto", `kwargs` go to the model picked, less the options only another family takes (SAM's
    `variant`, `decoder`, `dtype` when a SAM 2-family model is picked), which are dropped with a
    warning; a GrabCut fallback takes its defaults. Options no candidate takes are an error.
    """
    if name == "auto":
        unknown = sorted(set(kwargs) - set(SamSegmenter.OPTIONS) - set(Sam2Segmenter.OPTIONS))
        if unknown:
            raise InvalidInputError(f"segmenter auto: unknown option {', '.join(unknown)}; the segmenters take "
                                    f"{', '.join(sorted(set(SamSegmenter.OPTIONS) | set(Sam2Segmenter.OPTIONS)))}")
    return SEGMENTERS.get(name, **kwargs)


def auto_order(device: str) -> tuple[str, ...]:
    """The segmenters "auto" tries, in order: on a CPU the fast ones first, on a GPU the most accurate first.

    SAM 3 is never picked automatically (gated, its own licence, 3.4 GB): name it with `--segmenter sam3`.
    """
    best_first = (*SAM2_MODELS, *SAM_MODELS, FAST_SEGMENTER)
    if str(device).startswith("cpu"):
        return (*CPU_FIRST, *(m for m in best_first if m not in CPU_FIRST))
    return best_first


def _packages(model: str) -> tuple[str, ...]:
    if model in SAM_MODELS:
        return ("torch", "segment_anything")
    return ("torch", "transformers", "timm") if model == FAST_SEGMENTER else ("torch", "transformers")


def _installed(model: str) -> bool:
    return all(importlib.util.find_spec(p) is not None for p in _packages(model))


def _options_for(model: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` less the options of another model family, which "auto" drops with a warning saying so."""
    takes = SamSegmenter.OPTIONS if model in SAM_MODELS else Sam2Segmenter.OPTIONS
    dropped = sorted(k for k in kwargs if k not in takes)
    if dropped:
        log.warning("segmenter auto took %s, which has no option %s: ignored (only SAM takes it)",
                    model, ", ".join(dropped))
    return {k: v for k, v in kwargs.items() if k in takes}


def auto_candidates(device: str | None = None) -> tuple[str, ...]:
    """`auto_order` for `device`, by default the device the deep backends would run on."""
    from ..models import pick_device

    return auto_order(device or (pick_device() if importlib.util.find_spec("torch") else "cpu"))


def _grabcut_saying_why(registry: Registry[Segmenter], **kwargs: Any) -> Segmenter:
    present = [m for m in registry.candidates(kwargs.get("device")) if find_model(m) is not None]
    if present:
        extra = "sam" if present[0] in SAM_MODELS else "sam2"
        reason = f"{present[0]} is on disk but its library is not installed — pip install 'editanything[{extra}]'"
    else:
        reason = f"SAM weights not found — run `{download_command(FAST_SEGMENTER)}`"
    return GrabCutSegmenter(note=reason)


_sam, _sam2 = for_model(SamSegmenter.from_model), for_model(Sam2Segmenter.from_model)
SEGMENTERS: Registry[Segmenter] = Registry(
    "segmenter",
    {**{m: _sam2(m) for m in SAM2_MODELS}, **{m: _sam(m) for m in SAM_MODELS}, FAST_SEGMENTER: _sam2(FAST_SEGMENTER),
     "sam3": _sam2("sam3"), "grabcut": GrabCutSegmenter},
    backends={"sam": _sam, "sam2-hf": _sam2, "sam3-hf": _sam2},
    order=auto_candidates, usable=lambda m: on_disk(m) and _installed(m), none_found=_grabcut_saying_why,
    adapt=_options_for,
)
"""Segmenter name → builder taking the backend's keyword settings; manifest backend (`loader["backend"]`) →
builder factory for a model of that backend, so a model added through the manifest (e.g.
$EDITANYTHING_MANIFEST) is a segmenter by its name."""
SEGMENTER_BACKENDS = SEGMENTERS.backends
register_segmenter = SEGMENTERS.register


__all__ = [
    "CPU_FIRST", "FAST_SEGMENTER", "SAM2_MODELS", "SAM_MODELS", "SAM_VARIANTS", "SEGMENTERS", "SEGMENTER_BACKENDS", "GrabCutSegmenter",
    "RefineSeed", "Sam2Segmenter", "SamSegmenter", "Segmenter", "auto_candidates", "auto_order", "get_segmenter", "register_sam_variant",
    "register_segmenter",
]
