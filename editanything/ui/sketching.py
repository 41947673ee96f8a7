"""The Sketch tab's handlers: a live preview of the first photo, and a whole upload sketched into a zip.

Sketching uses no Editor model, so these events run in their own queue group. Uploaded zips go
through `uploads.unzip_images` (limits checked before extracting); a run's unpacked inputs are
deleted as soon as it is done, only its sketches and zip stay until the next run or the session ends.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import gradio as gr

from .. import threads
from ..batch import sketch_folder
from ..edges.hed import RUNTIMES
from ..errors import InvalidInputError
from ..imageio import IMAGE_SUFFIXES, limit_size
from ..progress import CancelToken
from ..sketch import STYLES, needs_color, param_help, sketch, style_params
from .jobs import Jobs
from .locks import SKETCH
from .uploads import ZipLimits, read_photo, unzip_images
from .workspace import Workspace

PREVIEW_SIZE = 1024  # long side of the sketch preview
GALLERY_SIZE = 12
# Slider ranges for sketch parameters; others get 0 .. 4 x their default.
_UNIT_PARAMS = {"shade", "pencil", "low", "high"}
_CHOICES = {"runtime": ("auto", *RUNTIMES)}  # the parameters that take a word, and their words


class SketchHandlers:
    def __init__(self, workspace: Workspace, max_pixels: int, max_files: int,
                 zip_limits: ZipLimits = ZipLimits(), jobs: Jobs | None = None) -> None:
        self.workspace = workspace
        self.jobs = jobs or Jobs()
        self.max_pixels = max_pixels
        self.max_files = max_files
        self.zip_limits = zip_limits

    def preview(self, files: list[str] | None, style: str, params: str) -> tuple:
        if not files:
            raise InvalidInputError("upload one or more photos, or a .zip of photos")
        with tempfile.TemporaryDirectory(dir=self.workspace.root) as tmp:
            first = Path(files[0])
            if first.suffix.lower() == ".zip":
                found = unzip_images(first, Path(tmp), self.max_files, self.zip_limits, first_only=True)
                if not found:
                    raise InvalidInputError(f"{first.name}: no photos in this zip")
                first = found[0]
            image = read_photo(str(first), self.max_pixels, gray=not needs_color(style))
        image = limit_size(image, PREVIEW_SIZE)
        values = _parse_params(params)
        start = time.perf_counter()
        drawing = sketch(image, style, **values)
        ms = (time.perf_counter() - start) * 1000
        return drawing, f"Preview of **{first.name}** at {drawing.shape[1]}×{drawing.shape[0]} ({ms:.0f} ms)."

    def preview_if_files(self, files: list[str] | None, style: str, params: str) -> tuple:
        if not files:
            return None, "Upload photos to see a preview."
        return self.preview(files, style, params)

    def from_controls(self, files, style, *values) -> tuple:
        params = _params_json(style, values)
        if not files:
            return params, None, "Upload photos to see a preview."
        drawing, info = self.preview(files, style, params)
        return params, drawing, info

    def style(self, style: str) -> list:
        """Show the style's parameter controls at their defaults."""
        defaults = style_params(style)
        updates = [gr.update(visible=name in defaults, value=defaults.get(name, control_default))
                   for name, control_default in all_params().items()]
        return [json.dumps(defaults), *updates]

    def sketch_all(self, runs: list[str], files: list[str] | None, style: str, params: str,
                   progress: gr.Progress = gr.Progress(), request: gr.Request = None) -> tuple:
        """Sketch every upload into a zip; the session's Cancel (or its closing) stops it between photos."""
        for old in runs:
            shutil.rmtree(old, ignore_errors=True)
        run = self.workspace.new_run("sketch")
        try:
            with self.jobs.running(getattr(request, "session_hash", None)) as job, threads.using(SKETCH):
                return self._run(run, files, style, params, progress, job)
        except BaseException:
            shutil.rmtree(run, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(run / "in", ignore_errors=True)

    def _run(self, run: Path, files: list[str] | None, style: str, params: str, progress, job: CancelToken) -> tuple:
        inputs, photos = self._expand(files, run / "in")
        outdir = run / style
        progress(0.0, desc=f"sketching {len(photos)} photo(s)")

        def sketched(number: int, total: int, *_: Any) -> None:  # the batch's call after each photo
            job.check()  # Cancel, or the page closed: no further photo
            progress((number, total), desc="sketching", unit="photos")

        report = sketch_folder([str(p) for p in inputs], outdir, style=style, params=_parse_params(params),
                               workers=1, progress=sketched, max_pixels=self.max_pixels)  # the upload limit
        made = sorted(outdir.rglob("*.png")) if outdir.is_dir() else []
        failures = [_named(reason, Path(src)) for src, reason in report.failed]
        if not made:
            raise InvalidInputError("no sketch was made: " + "; ".join(failures)[:500])
        archive = run / f"sketches-{style}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:  # PNGs are already compressed
            for p in made:
                z.write(p, p.relative_to(outdir).as_posix())
        lines = [f"{report.summary()}; the zip holds {len(made)} sketch(es)."] + [f"- failed: {f}" for f in failures]
        return [str(run)], [str(p) for p in made[:GALLERY_SIZE]], str(archive), "\n".join(lines)

    def _expand(self, files: list[str] | None, dest: Path) -> tuple[list[Path], list[Path]]:
        """(what `sketch_folder` takes: photos, and each zip unpacked into a folder under `dest`; every photo)."""
        if not files:
            raise InvalidInputError("upload one or more photos, or a .zip of photos")
        inputs: list[Path] = []
        photos: list[Path] = []
        for f in files:
            path = Path(f)
            if path.suffix.lower() == ".zip":
                folder = dest / f"{len(inputs)}-{path.stem}"
                photos += unzip_images(path, folder, self.max_files - len(photos), self.zip_limits)
                inputs.append(folder)
            else:
                photos.append(path)
                inputs.append(path)
            if len(photos) > self.max_files:
                raise InvalidInputError(f"too many photos: at most {self.max_files} per run")
        if not photos:
            raise InvalidInputError("no photos found in the upload (expected " + ", ".join(IMAGE_SUFFIXES) + ")")
        return inputs, photos


@functools.cache
def all_params() -> dict[str, Any]:
    """Every parameter of every style, with the first default seen (one control each)."""
    out: dict[str, Any] = {}
    for style in STYLES:
        for name, default in style_params(style).items():
            out.setdefault(name, default)
    return out


@functools.cache
def all_help() -> dict[str, str]:
    """What each parameter does, from the first style whose docstring says so (as `all_params` takes defaults)."""
    out: dict[str, str] = {}
    for style in STYLES:
        for name, text in param_help(style).items():
            out.setdefault(name, text[:1].upper() + text[1:])
    return out


def param_control(name: str, default: Any, visible: bool):
    """The control of one sketch parameter: a readable label, the style's own words as help."""
    label = name.replace("_", " ").capitalize()
    info = all_help().get(name)
    if isinstance(default, bool):
        return gr.Checkbox(value=default, label=label, info=info, visible=visible)
    if isinstance(default, str):
        return gr.Dropdown(list(_CHOICES[name]), value=default, label=label, info=info, visible=visible)
    top = 1.0 if name in _UNIT_PARAMS else max(1.0, 4.0 * float(default))
    step = 1 if isinstance(default, int) else round(top / 100, 4)
    return gr.Slider(0, top, value=default, step=step, label=label, info=info, visible=visible)


def _params_json(style: str, values: tuple) -> str:
    wanted = style_params(style)
    return json.dumps({name: v for name, v in zip(all_params(), values) if name in wanted})


def _parse_params(text: str) -> dict[str, Any]:
    text = (text or "").strip()
    if not text:
        return {}
    try:
        values = json.loads(text)
    except (ValueError, RecursionError):
        values = None
    if not isinstance(values, dict):
        raise InvalidInputError(f'sketch parameters must be a JSON object like {{"blur": 6}}; got {text[:80]!r}')
    return values


def _named(reason: str, source: Path) -> str:
    """A batch failure as `name: reason`, without the server's path."""
    reason = reason.replace(str(source), source.name)
    return reason if reason.startswith(source.name) else f"{source.name}: {reason}"
