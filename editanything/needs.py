"""Which models a kind of job takes on a device, for `editanything models needs`.

Each stage lists its candidates in the order "auto" tries them on that device, taken from the
stages themselves (the detector, segmenter and remover registries' candidates, `generate.auto.order`),
so this answer cannot drift from what a job would run. A stage that has a
weight-free fallback says what runs without any of its models; one without stops the job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidInputError

JOBS = ("edit", "segment", "sketch", "ui")


@dataclass(frozen=True)
class Need:
    """One stage of a job: its models, best first for the device, and what runs without them (None: nothing)."""

    stage: str
    candidates: tuple[str, ...]
    without: str | None
    fetch: str | None = None  # the one to fetch when none is on disk (default: the first candidate)

    @property
    def present(self) -> str | None:
        """The candidate the job would run now: the first one on disk."""
        from .models import find_model

        return next((m for m in self.candidates if find_model(m) is not None), None)

    @property
    def pick(self) -> str:
        """What to run: the model on disk, else the best one to fetch."""
        return self.present or self.fetch or self.candidates[0]


def job_needs(job: str, *, device: str = "cpu", select: bool = False, clicks: bool = False, prompt: bool = False,
              remove: bool = False, recolor: bool = False, controlnets: tuple[str, ...] = (), lcm: bool = False,
              style: str | None = None, matte: str | None = None) -> list[Need]:
    """The stages `job` goes through with these options (the CLI's flags of the same names) on `device`;
    `matte` is --matte's backend ("auto", a name of the matting registry; None: no --matte)."""
    if job not in JOBS:
        raise InvalidInputError(f"unknown job {job!r}; choose one of: {', '.join(JOBS)}")
    cuda = str(device).startswith("cuda")
    if job == "sketch":
        return _sketch_needs(style or "pencil")
    ui = job == "ui"  # every tool of the app: each stage has a way to run without its models
    needs = _selection(select or ui, clicks or ui, device, detector_optional=ui)
    needs += _matter("auto" if ui else matte)  # the app's soft edges use "auto"
    if job == "segment":
        return needs
    if ui:
        return needs + [_generator(cuda, "replace and background cannot run"), _remover()]
    if recolor:
        return needs
    if remove:
        return needs + [_remover()]
    generator = _generator(cuda, None, sd15_only=bool(controlnets))
    needs.append(generator)
    from .generate.diffusion import CONTROLNET_MODELS

    for kind in controlnets:
        if kind not in CONTROLNET_MODELS:
            raise InvalidInputError(f"unknown ControlNet {kind!r}; choose one of: {', '.join(CONTROLNET_MODELS)}")
        needs.append(Need(f"controlnet {kind}", (CONTROLNET_MODELS[kind],), None))
    if lcm:
        from .generate.lcm import LORA_MODELS

        family = "sdxl" if generator.pick == "sdxl-inpainting" else "sd15"
        if generator.pick in ("sd15-inpainting", "sdxl-inpainting"):
            needs.append(Need("LCM-LoRA", (LORA_MODELS[family],), None))
    if not prompt:
        from .caption import auto_candidates

        needs.append(Need("captioner", auto_candidates(device), None))  # writes the prompt nobody gave
    return needs


def _selection(select: bool, clicks: bool, device: str, *, detector_optional: bool = False) -> list[Need]:
    from .detect import DETECTORS, FETCH_FIRST
    from .segment import SEGMENTERS

    needs = []
    if select:
        needs.append(Need("detector", DETECTORS.candidates(device),
                          "selection by text cannot run" if detector_optional else None, FETCH_FIRST))
    if select or clicks:
        needs.append(Need("segmenter", SEGMENTERS.candidates(device), "GrabCut (weight-free; rougher edges)"))
    return needs


def _generator(cuda: bool, without: str | None, *, sd15_only: bool = False) -> Need:
    from .generate.auto import order

    return Need("generator", ("sd15-inpainting",) if sd15_only else order(cuda), without)


def _remover() -> Need:
    from .generate.removal import REMOVERS

    return Need("remover", REMOVERS.candidates(), "OpenCV's fill (smears large holes)")


def _matter(backend: str | None) -> list[Need]:
    """--matte's models: none for a weight-free backend; "auto" tries the registry's models, then falls back
    to its first weight-free backend."""
    if backend is None:
        return []
    from .matte import MATTERS, WEIGHT_FREE, check_matter

    if check_matter(backend) in WEIGHT_FREE:  # raises InvalidInputError for an unknown backend
        return []
    if backend != "auto":
        return [Need("matting", (backend,), None)]
    order = MATTERS.candidates()
    fallback = next(m for m in order if m in WEIGHT_FREE)
    return [Need("matting", tuple(m for m in order if m not in WEIGHT_FREE), f"{fallback} (weight-free)")]


def _sketch_needs(style: str) -> list[Need]:
    from .sketch import is_generative
    from .sketch.generative import BASE_MODEL, CONTROLNET_MODEL, EDGE_MODEL

    if is_generative(style):  # raises InvalidInputError for an unknown style
        return [Need("base model", (BASE_MODEL,), None), Need("ControlNet", (CONTROLNET_MODEL,), None),
                Need("edges", (EDGE_MODEL,), None)]
    return [Need("edges", (EDGE_MODEL,), None)] if style.startswith("hed") else []


_UNITS = {"KB": 1e3, "MB": 1e6, "GB": 1e9}


def approx_bytes(size_hint: str) -> float | None:
    """A manifest size hint ("2.1 GB", "~40 MB") in bytes, or None when it has no number."""
    found = re.search(r"([\d.]+)\s*([KMG]B)", size_hint or "")
    return float(found.group(1)) * _UNITS[found.group(2)] if found else None


def human(size: float) -> str:
    for unit in ("GB", "MB", "KB"):
        if size >= _UNITS[unit]:
            return f"{size / _UNITS[unit]:.1f} {unit}"
    return f"{size:.0f} B"
