"""The web UI: a gradio Blocks app over the same Python API as the CLI (it has no editing logic).

    demo = build_app()                 # Editor() with the best backends on disk, weight-free otherwise
    serve(demo, port=7860)             # 127.0.0.1 unless told; blocks until Ctrl-C

Tabs: *Edit* (click / box / phrase → mask overlay → Replace, Remove, Background, Recolor),
*Sketch* (photos or a zip → sketches, live preview, zip download) and *Models* (what is on disk,
which backend each stage uses). Named API endpoints (`gradio_client`): `load`, `segment_points`,
`select_text`, `replace`, `remove`, `background`, `recolor`, `sketch`, `sketch_all`, `models`.
Selection endpoints keep the photo, clicks and masks in the caller's session, so a client calls
`segment_points` and then `remove` on the same `Client`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any, Callable

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import cv2  # noqa: E402
import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402

from ..batch import limit_size, sketch_folder  # noqa: E402
from ..errors import EditAnythingError, ImageError, InvalidInputError, NothingFound  # noqa: E402
from ..generate import GenerationParams, sampler_names  # noqa: E402
from ..imageio import IMAGE_SUFFIXES, read_image, write_image  # noqa: E402
from ..models import download_command, find_model, list_models  # noqa: E402
from ..overlay import clicks, outline, overlay, tint  # noqa: E402
from ..pipeline import EditRequest, Editor  # noqa: E402
from ..sketch import STYLES, needs_color, sketch, style_params  # noqa: E402
from ..types import Detections  # noqa: E402
from .state import CLICK_MODES, Session  # noqa: E402

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 40_000_000  # a web upload gets a tighter limit than a trusted local file
DEFAULT_MAX_FILE_SIZE = "50mb"
DEFAULT_QUEUE_SIZE = 16
DISPLAY_SIZE = 1024  # long side of the click canvas; bigger photos are shown shrunk, clicks scaled back
PREVIEW_SIZE = 1024  # long side of the sketch preview
GALLERY_SIZE = 12
MODEL_LOCK = "editor"  # one concurrency group: the backends are shared and not thread-safe
EDIT_MODES = ("replace", "remove", "background", "recolor")
# Slider ranges for sketch parameters; others get 0 .. 4 x their default.
_UNIT_PARAMS = {"shade", "pencil", "low", "high"}


def _readable(fn: Callable) -> Callable:
    """Show our errors as their one-line message in the UI; log anything else, never show a trace."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except EditAnythingError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except MemoryError:
            raise gr.Error("out of memory: try a smaller photo or fewer files", print_exception=False) from None
        except Exception as exc:
            log.exception("unexpected error in %s", getattr(fn, "__name__", fn))
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise gr.Error(f"unexpected error ({type(exc).__name__}: {first}); details are in the server log",
                           print_exception=False) from None

    return wrapper


def photo_upload(**options: Any) -> gr.Image:
    """An image upload whose file goes to `read_image` as it is (our format checks, pixel limit and messages).

    The stock component opens the file with Pillow first, so a non-image upload would fail there
    with a generic error. gradio has already checked that the path lies in its upload folder. The
    instance's `preprocess` is replaced rather than subclassed: gradio writes a `.pyi` stub beside
    the source of every Image subclass.
    """
    component = gr.Image(type="filepath", image_mode=None, **options)
    stock = component.preprocess

    def preprocess(payload):
        if payload is None or payload.path is None:
            return stock(payload)
        return str(payload.path)

    component.preprocess = preprocess
    return component


class _Handlers:
    """The event handlers; each is a thin wrapper over Editor, the segmenter, masks and sketch."""

    def __init__(self, editor: Editor, max_pixels: int, display_size: int, max_files: int) -> None:
        self.editor = editor
        self.max_pixels = max_pixels
        self.display_size = display_size
        self.max_files = max_files
        self._tmp = tempfile.TemporaryDirectory(prefix="editanything-ui-")
        self.workdir = Path(self._tmp.name)
        # Encodes the full-size mask PNG while the canvas is drawn (OpenCV releases the GIL).
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="editanything-ui-writer")

    # ---- reading uploads ----

    def read_photo(self, path: str, *, gray: bool = False) -> np.ndarray:
        """read_image with the UI's pixel limit; messages name the uploaded file, not the server path."""
        try:
            return read_image(path, gray=gray, max_pixels=self.max_pixels)
        except ImageError as exc:
            raise ImageError(str(exc).replace(str(path), Path(path).name)) from None

    def _photo(self, session: Session, photo: str | None) -> Session:
        """The session with `photo` loaded; no photo means the one already loaded (API clients send it once)."""
        if not photo:
            if session.image is None:
                raise InvalidInputError("upload a photo first")
            return session
        if session.source != photo or session.image is None:
            session.set_image(photo, self.read_photo(photo), self.display_size)
        return session

    # ---- Edit tab: selection ----

    def _selection_outputs(self, session: Session, invert: bool, grow: float, with_mask: bool = True) -> tuple:
        det = session.detections
        if det is not None and len(det):
            choices = [(f"{i} {p} {s:.2f}", i) for i, (p, s) in enumerate(zip(det.phrases, det.scores))]
            instances = gr.CheckboxGroup(choices=choices, value=list(range(len(det))))
        else:
            instances = gr.CheckboxGroup(choices=[], value=[])
        chosen = list(range(len(det))) if det is not None else None
        canvas, mask = self.render(session, chosen, invert, grow, with_mask)
        return session, canvas, mask, instances, session.points_json(), session.boxes_json(), self._info(session)

    def _info(self, session: Session) -> str:
        if session.image is None:
            return "Upload a photo to start."
        h, w = session.image.shape[:2]
        parts = [f"**{Path(session.source).name}** {w}×{h}"]
        if session.text:
            parts.append(f"text “{session.text}”")
        if session.points:
            pos = sum(1 for p in session.points if p[2])
            parts.append(f"{pos} click(s) +, {len(session.points) - pos} −")
        if session.boxes:
            parts.append(f"{len(session.boxes)} box(es)")
        if session.corner is not None:
            parts.append("click the opposite corner of the box")
        if session.detections is None and not session.points and not session.boxes:
            parts.append("click on the object to select it")
        return " · ".join(parts)

    def _folder(self, session: Session) -> Path:
        """The session's own folder for the files it shows (removed when the session expires)."""
        if session.key is None:
            session.key = uuid.uuid4().hex
        return self.workdir / "sessions" / session.key

    def forget(self, session: Session) -> None:
        if session.key is not None:
            shutil.rmtree(self.workdir / "sessions" / session.key, ignore_errors=True)

    def render(self, session: Session, chosen: list[int] | None, invert: bool, grow: float, with_mask: bool = True):
        """Files of the canvas (photo with the selection drawn) and the full-size mask (white = selected).

        Written with our fast encoders (JPEG for the view, fast PNG for the lossless mask); gradio
        then only copies the small files, which keeps a click's round trip short. Without
        `with_mask` the mask output is left as it is (`gr.skip()`): a browser click does not pay
        for a full-size PNG that sits in a closed panel.
        """
        if session.image is None:
            return None, None
        folder = self._folder(session)
        mask = session.mask(chosen, invert)
        mask_file = None
        if with_mask and mask is not None:
            mask_file = self._writer.submit(self._write_mask, session, mask)
        canvas_file = str(write_image(folder / "canvas.jpg", self._draw(session, chosen, invert, grow, mask),
                                      quality=90))
        if not with_mask:
            return canvas_file, gr.skip()
        return canvas_file, None if mask_file is None else mask_file.result()

    def _write_mask(self, session: Session, mask: np.ndarray) -> str:
        """The session's mask file (white = selected), written with the fast PNG settings."""
        return str(write_image(self._folder(session) / "mask.png", mask.astype(np.uint8) * 255))

    def _draw(self, session: Session, chosen: list[int] | None, invert: bool, grow: float,
              mask: np.ndarray | None) -> np.ndarray:
        """The canvas: the shrunk photo with `mask` (the chosen instances' union) and the clicks drawn."""
        s = session.scale
        canvas = session.display
        if mask is not None:
            det = session.detections if chosen is None else session.detections.keep(indices=chosen)
            if invert:
                canvas = tint(canvas, _shrink_mask(mask, canvas.shape))
            else:
                canvas = overlay(canvas, _scaled(det, canvas.shape, s), numbers=chosen)
            if grow > 0 and mask.any():
                canvas = outline(canvas, _grown(_shrink_mask(mask, canvas.shape), grow * s))
        canvas = clicks(canvas, [(x * s, y * s, lab) for x, y, lab in session.points],
                        [tuple(v * s for v in b) for b in session.boxes],
                        None if session.corner is None else (session.corner[0] * s, session.corner[1] * s))
        return canvas

    def _segment(self, session: Session, invert: bool, grow: float, with_mask: bool = True) -> tuple:
        prompt = session.prompt()
        if not prompt.points and not prompt.boxes:
            session.segmented_by(prompt, None)
            return self._selection_outputs(session, invert, grow, with_mask)
        detections = self.editor.segmenter.segment(session.image, prompt, refine=session.refine_seed(prompt))
        if not detections.union_mask().any():
            raise NothingFound("the clicks selected nothing; click inside the object or draw a box around it")
        session.segmented_by(prompt, detections)
        return self._selection_outputs(session, invert, grow, with_mask)

    def load(self, session: Session, photo: str | None, invert: bool, grow: float) -> tuple:
        if not photo:
            return self._selection_outputs(Session(), invert, grow)
        session.set_image(photo, self.read_photo(photo), self.display_size)
        return self._selection_outputs(session, invert, grow)

    def warm(self, session: Session) -> None:
        """Right after an upload: the segmenter's per-image work (SAM's embedding) while the user looks."""
        if session.image is not None:
            self.editor.segmenter.prepare(session.image)

    def segment_points(self, session: Session, photo: str | None, points: str, boxes: str, invert: bool,
                       grow: float) -> tuple:
        session = self._photo(session, photo)
        with session.change():
            session.set_prompt(points, boxes)
            return self._segment(session, invert, grow)

    def click(self, session: Session, photo: str | None, mode: str, invert: bool, grow: float, mask_shown: bool,
              evt: gr.SelectData) -> tuple:
        session = self._photo(session, photo)
        x, y = session.to_image(*evt.index[:2])
        with session.change():
            if not session.click(x, y, mode):
                return self._selection_outputs(session, invert, grow, mask_shown)
            return self._segment(session, invert, grow, mask_shown)

    def select_text(self, session: Session, photo: str | None, phrase: str, invert: bool, grow: float) -> tuple:
        session = self._photo(session, photo)
        phrase = (phrase or "").strip()
        if not phrase:
            raise InvalidInputError('type what to select, e.g. "the dog" or "cup . spoon"')
        with session.change():
            session.clear()
            session.text = phrase
            session.segmented_by(session.prompt(), self.editor.select(session.image, session.prompt()))
            return self._selection_outputs(session, invert, grow)

    def clear(self, session: Session, invert: bool, grow: float) -> tuple:
        session.clear()
        return self._selection_outputs(session, invert, grow)

    def preview(self, session: Session, chosen: list[int], invert: bool, grow: float, mask_shown: bool = True) -> tuple:
        return self.render(session, chosen, invert, grow, mask_shown)

    def show_mask(self, session: Session, chosen: list[int], invert: bool) -> tuple:
        """The mask panel was opened: from now on clicks send the mask too; show the current one."""
        mask = session.mask(chosen, invert)
        if mask is None:
            return True, None
        return True, self._write_mask(session, mask)

    # ---- Edit tab: editing ----

    def edit(self, mode: str, session: Session, photo: str | None, chosen: list[int], invert: bool, grow: float,
             feather: float, prompt: str, negative: str, sampler: str, steps: float, cfg: float, seed: float,
             strength: float, color: str, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
        session = self._photo(session, photo)
        mask = session.mask(chosen, invert)
        if mask is None or not mask.any():
            raise NothingFound("select something first: click on the object, draw a box or type a phrase")
        progress(0.0, desc=f"{mode}: preparing")
        params = GenerationParams(prompt=prompt or "", negative_prompt=negative or "", sampler=sampler,
                                  steps=int(steps), cfg_scale=float(cfg), strength=float(strength), seed=int(seed))
        request = EditRequest(mode=mode, selection=session.prompt(), mask=mask, params=params, grow=float(grow),
                              feather=float(feather), color=color if mode == "recolor" else None)
        start = time.perf_counter()
        result = self.editor.edit(session.image, request, source=Path(session.source).name)
        seconds = time.perf_counter() - start
        progress(1.0, desc="saving")
        if session.result:
            Path(session.result).unlink(missing_ok=True)
        out = self._folder(session) / f"{Path(session.source).stem}-{mode}-{result.recipe.seed}.png"
        session.result = str(result.save(out))
        after = result.images[0]
        generator = result.recipe.models.get("generator", {}).get("name", "?")
        kept = {"background": "the selection itself is unchanged",
                "recolor": "pixels outside the selection are unchanged"}.get(
            mode, f"pixels farther than {grow:g} px outside the selection are unchanged")
        info = (f"{mode} done in {seconds:.1f} s with {generator} (seed {result.recipe.seed}); {kept}. "
                "The PNG below carries the recipe (`editanything replay` re-runs it).")
        return after, (session.image, after), session.result, info

    # ---- Sketch tab ----

    def _expand(self, files: list[str] | None, dest: Path, limit: int) -> tuple[list[Path], list[Path]]:
        """(what `sketch_folder` takes: photos, and each zip unpacked into a folder under `dest`; every photo).

        Zips are unpacked member by member with cleaned names, so nothing lands outside `dest`.
        """
        if not files:
            raise InvalidInputError("upload one or more photos, or a .zip of photos")
        inputs: list[Path] = []
        photos: list[Path] = []
        for f in files:
            path = Path(f)
            if path.suffix.lower() == ".zip":
                folder = dest / f"{len(inputs)}-{path.stem}"
                photos += _unzip_images(path, folder, limit - len(photos))
                inputs.append(folder)
            else:
                photos.append(path)
                inputs.append(path)
            if len(photos) > limit:
                raise InvalidInputError(f"too many photos: at most {limit} per run")
        if not photos:
            raise InvalidInputError("no photos found in the upload (expected " + ", ".join(IMAGE_SUFFIXES) + ")")
        return inputs, photos

    def sketch_preview(self, files: list[str] | None, style: str, params: str) -> tuple:
        if not files:
            raise InvalidInputError("upload one or more photos, or a .zip of photos")
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            first = Path(files[0])
            if first.suffix.lower() == ".zip":
                found = _unzip_images(first, Path(tmp), self.max_files, first_only=True)
                if not found:
                    raise InvalidInputError(f"{first.name}: no photos in this zip")
                first = found[0]
            image = self.read_photo(str(first), gray=not needs_color(style))
        image = limit_size(image, PREVIEW_SIZE)
        values = _parse_params(params)
        start = time.perf_counter()
        drawing = sketch(image, style, **values)
        ms = (time.perf_counter() - start) * 1000
        return drawing, f"Preview of **{first.name}** at {drawing.shape[1]}×{drawing.shape[0]} ({ms:.0f} ms)."

    def sketch_preview_if_files(self, files: list[str] | None, style: str, params: str) -> tuple:
        if not files:
            return None, "Upload photos to see a preview."
        return self.sketch_preview(files, style, params)

    def sketch_from_controls(self, files, style, *values) -> tuple:
        params = _params_json(style, values)
        if not files:
            return params, None, "Upload photos to see a preview."
        drawing, info = self.sketch_preview(files, style, params)
        return params, drawing, info

    def sketch_all(self, runs: list[str], files: list[str] | None, style: str, params: str,
                   progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
        for old in runs:
            shutil.rmtree(old, ignore_errors=True)
        run = self.workdir / f"sketch-{uuid.uuid4().hex}"
        try:
            return self._sketch_run(run, files, style, params, progress)
        except BaseException:
            shutil.rmtree(run, ignore_errors=True)
            raise

    def _sketch_run(self, run: Path, files: list[str] | None, style: str, params: str, progress) -> tuple:
        inputs, photos = self._expand(files, run / "in", self.max_files)
        outdir = run / style
        progress(0.0, desc=f"sketching {len(photos)} photo(s)")
        report = sketch_folder([str(p) for p in inputs], outdir, style=style, params=_parse_params(params),
                               workers=1, progress=True)
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

    def sketch_style(self, style: str) -> list:
        """Show the style's parameter controls at their defaults."""
        defaults = style_params(style)
        updates = [gr.update(visible=name in defaults, value=defaults.get(name, control_default))
                   for name, control_default in _all_sketch_params().items()]
        return [json.dumps(defaults), *updates]

    # ---- Models tab ----

    def models(self) -> tuple:
        described = self.editor.describe()
        lines = [f"- **{stage}**: {text}" for stage, text in described.items()]
        rows = []
        for spec in list_models():
            found = find_model(spec.name)
            rows.append([spec.name, spec.kind, spec.size_hint, spec.license,
                         f"present ({found.root})" if found else f"missing: {download_command(spec.name)}"])
        return "\n".join(lines), rows

    def banner(self) -> str:
        """What runs without weights, and how to get the deep models."""
        d = self.editor.describe()
        notes = []
        if "GrabCut" in d.get("segmenter", ""):
            notes.append(f"selection uses **{d['segmenter']}**")
        if d.get("generator", "").startswith("classical"):
            notes.append("Remove fills the selection from its surroundings with OpenCV inpainting and Recolor needs "
                         "no model; Replace and Background need Stable Diffusion: "
                         f"`{download_command('sd15-inpainting')}`")
        if d.get("detector", "").startswith("unavailable"):
            notes.append(f"text selection needs Grounding DINO: `{download_command('groundingdino-swint-ogc')}`")
        if not notes:
            return "Models: " + " · ".join(f"{k}: {v}" for k, v in d.items() if v != "none")
        return "**Running with the weight-free backends.** " + "; ".join(notes) + "."


def _named(reason: str, source: Path) -> str:
    """A batch failure as `name: reason`, without the server's path."""
    reason = reason.replace(str(source), source.name)
    return reason if reason.startswith(source.name) else f"{source.name}: {reason}"


def _shrink_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if mask.shape == shape[:2]:
        return mask
    return cv2.resize(mask.view(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST).astype(bool)


def _grown(mask: np.ndarray, px: float) -> np.ndarray:
    """The mask dilated by a disc of radius `px`: what `masks.grow` does, at preview precision and ~10x faster."""
    r = max(1, round(px))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.view(np.uint8), disc).astype(bool)


def _scaled(det: Detections, shape: tuple[int, ...], s: float) -> Detections:
    """Detections drawn at canvas size."""
    if s == 1.0:
        return det
    masks = None
    if det.masks is not None:
        masks = np.stack([_shrink_mask(m, shape) for m in det.masks]) if len(det) else np.zeros((0, *shape[:2]), bool)
    return Detections(det.xyxy * s, det.scores, det.phrases, masks)


def _unzip_images(archive: Path, dest: Path, limit: int, max_bytes: int = 2 << 30, *,
                  first_only: bool = False) -> list[Path]:
    """Write the zip's image members under `dest` (never outside it); at most `limit` files, `max_bytes` in all.

    `first_only`: stop after the first photo (a preview needs no more).
    """
    try:
        z = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInputError(f"{archive.name}: not a readable zip file ({exc})") from None
    out: list[Path] = []
    total = 0
    with z:
        for info in z.infolist():
            name = PurePosixPath(info.filename.replace("\\", "/"))
            parts = [p for p in name.parts if p not in ("", ".", "..", "/")]
            if info.is_dir() or not parts or name.suffix.lower() not in IMAGE_SUFFIXES or parts[0] == "__MACOSX":
                continue
            if len(out) >= limit:
                raise InvalidInputError(f"{archive.name}: too many photos; at most {limit} per run")
            total += info.file_size
            if total > max_bytes:
                raise InvalidInputError(f"{archive.name}: over {max_bytes >> 20} MiB uncompressed")
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out.append(target)
            if first_only:
                break
    return out


@functools.cache
def _all_sketch_params() -> dict[str, Any]:
    """Every parameter of every style, with the first default seen (one control each)."""
    out: dict[str, Any] = {}
    for style in STYLES:
        for name, default in style_params(style).items():
            out.setdefault(name, default)
    return out


def _param_control(name: str, default: Any, visible: bool):
    if isinstance(default, bool):
        return gr.Checkbox(value=default, label=name, visible=visible)
    top = 1.0 if name in _UNIT_PARAMS else max(1.0, 4.0 * float(default))
    step = 1 if isinstance(default, int) else round(top / 100, 4)
    return gr.Slider(0, top, value=default, step=step, label=name, visible=visible)


def _params_json(style: str, values: tuple) -> str:
    wanted = style_params(style)
    return json.dumps({name: v for name, v in zip(_all_sketch_params(), values) if name in wanted})


def _parse_params(text: str) -> dict[str, Any]:
    text = (text or "").strip()
    if not text:
        return {}
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, dict):
        raise InvalidInputError(f'sketch parameters must be a JSON object like {{"blur": 6}}; got {text[:80]!r}')
    return values


def _default_editor() -> Editor:
    captioner = "auto" if find_model("blip2-opt-2.7b") is not None else None
    return Editor(captioner=captioner)


def build_app(editor: Editor | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS,
              display_size: int = DISPLAY_SIZE, max_files: int = 500,
              queue_size: int = DEFAULT_QUEUE_SIZE) -> gr.Blocks:
    """The gradio app over `editor` (default: `Editor()`, best backends on disk, weight-free otherwise).

    max_pixels: uploads with more pixels are refused with a message (gradio's `max_file_size`,
        set in `serve`, limits the bytes). display_size: long side of the click canvas.
    max_files: photos per sketch run. queue_size: requests waiting at most; more are turned away.
    """
    h = _Handlers(editor or _default_editor(), max_pixels, display_size, max_files)
    readable = _readable
    with gr.Blocks(title="editanything", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as demo:
        gr.Markdown("## editanything — click to select, then replace, remove or restyle")
        with gr.Tab("Edit"):
            gr.Markdown(h.banner())
            session = gr.State(Session(), time_to_live=3 * 3600, delete_callback=h.forget)
            mask_shown = gr.State(False)  # is the mask panel open (else clicks skip the full-size mask file)
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    photo = photo_upload(label="Photo", sources=["upload", "clipboard"], height=220, elem_id="photo")
                    mode = gr.Radio(list(CLICK_MODES), value=CLICK_MODES[0], label="A click on the canvas does",
                                    elem_id="click-mode")
                    with gr.Row():
                        phrase = gr.Textbox(label="…or select by text", placeholder="the dog . red car", scale=3)
                        find = gr.Button("Select", scale=1)
                    instances = gr.CheckboxGroup(label="Selected instances", type="value", elem_id="instances")
                    with gr.Row():
                        invert = gr.Checkbox(label="Invert selection", value=False)
                        clear = gr.Button("Clear selection", size="sm")
                    grow = gr.Slider(0, 64, value=8, step=1, label="Grow (px): edits may reach this far out")
                    feather = gr.Slider(0, 64, value=8, step=1, label="Feather (px): blend width at the edited area's edge")
                    with gr.Accordion("Clicks, boxes and mask", open=False) as details:
                        points = gr.Textbox(label="Clicks [[x, y, 1=add / 0=exclude], …]", value="[]")
                        boxes = gr.Textbox(label="Boxes [[x0, y0, x1, y1], …]", value="[]")
                        resegment = gr.Button("Segment these")
                        mask_view = gr.Image(label="Mask (white = selected)", format="png", interactive=False,
                                             height=160, elem_id="mask-view")
                with gr.Column(scale=2):
                    canvas = gr.Image(label="Click on the object", interactive=False, format="jpeg",
                                      elem_id="canvas", height=560, buttons=["fullscreen"])
                    info = gr.Markdown("Upload a photo to start.", elem_id="selection-info")
            with gr.Row():
                prompt = gr.Textbox(label="Prompt (Replace / Background)", scale=3)
                negative = gr.Textbox(label="Negative prompt", scale=2)
            with gr.Accordion("Generation settings", open=False):
                with gr.Row():
                    sampler = gr.Dropdown(sampler_names(), value=GenerationParams.sampler, label="Sampler")
                    steps = gr.Slider(1, 100, value=GenerationParams.steps, step=1, label="Steps")
                    cfg = gr.Slider(0, 30, value=GenerationParams.cfg_scale, step=0.5, label="CFG scale")
                    seed = gr.Number(value=-1, precision=0, label="Seed (-1 = random)")
                    strength = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Denoising strength")
                    color = gr.ColorPicker(value="#d03030", label="Recolor with")
            with gr.Row():
                buttons = {m: gr.Button(m.capitalize(), variant="primary" if m == "remove" else "secondary",
                                        elem_id=f"btn-{m}") for m in EDIT_MODES}
            edit_info = gr.Markdown(elem_id="edit-info")
            with gr.Row():
                result = gr.Image(label="Result (lossless PNG)", format="png", interactive=False, elem_id="result")
                compare = gr.ImageSlider(label="Before / after", format="jpeg", interactive=False)
            download = gr.File(label="Download PNG with recipe", interactive=False, elem_id="download", height=90)

            selection_out = [session, canvas, mask_view, instances, points, boxes, info]
            common = dict(concurrency_id=MODEL_LOCK, show_progress="minimal")
            photo.upload(readable(h.load), [session, photo, invert, grow], selection_out, api_name="load", **common
                         ).then(readable(h.warm), [session], None, api_visibility="private", **common)
            photo.clear(readable(h.load), [session, photo, invert, grow], selection_out, api_visibility="private",
                        **common)
            canvas.select(readable(h.click), [session, photo, mode, invert, grow, mask_shown], selection_out,
                          api_visibility="private", **common)
            details.expand(readable(h.show_mask), [session, instances, invert], [mask_shown, mask_view],
                           api_visibility="private", **common)
            details.collapse(lambda: False, None, mask_shown, api_visibility="private", queue=False)
            gr.on([resegment.click, points.submit, boxes.submit], readable(h.segment_points),
                  [session, photo, points, boxes, invert, grow], selection_out, api_name="segment_points", **common)
            gr.on([find.click, phrase.submit], readable(h.select_text), [session, photo, phrase, invert, grow],
                  selection_out, api_name="select_text", **common)
            clear.click(readable(h.clear), [session, invert, grow], selection_out, api_visibility="private", **common)
            gr.on([instances.input, invert.input, grow.release], readable(h.preview),
                  [session, instances, invert, grow, mask_shown], [canvas, mask_view], api_visibility="undocumented",
                  show_progress="hidden", concurrency_id=MODEL_LOCK)
            edit_in = [session, photo, instances, invert, grow, feather, prompt, negative, sampler, steps, cfg, seed,
                       strength, color]
            for m, button in buttons.items():
                button.click(readable(functools.partial(h.edit, m)), edit_in, [result, compare, download, edit_info],
                             api_name=m, concurrency_id=MODEL_LOCK)

        with gr.Tab("Sketch"):
            runs = gr.State([], time_to_live=3 * 3600, delete_callback=_remove_runs)
            with gr.Row():
                with gr.Column(scale=1, min_width=300):
                    files = gr.File(label="Photos (several files or a .zip)", file_count="multiple",
                                    file_types=["image", ".zip"], elem_id="sketch-files")
                    style = gr.Dropdown(list(STYLES), value="pencil", label="Style",
                                        info="hed styles need `" + download_command("hed") + "`")
                    controls = [_param_control(name, default, name in style_params("pencil"))
                                for name, default in _all_sketch_params().items()]
                    params = gr.Textbox(label="Parameters (JSON)", value=json.dumps(style_params("pencil")))
                    run_all = gr.Button("Sketch all and zip", variant="primary")
                with gr.Column(scale=2):
                    sketch_view = gr.Image(label="Live preview (first photo)", format="png", interactive=False,
                                           height=480)
                    sketch_info = gr.Markdown()
                    gallery = gr.Gallery(label="Sketches", columns=4, height=300, format="png")
                    archive = gr.File(label="Download all (zip)", interactive=False, height=90)
            sketch_io = dict(concurrency_id="sketch", show_progress="minimal")
            restyled = style.change(readable(h.sketch_style), style, [params, *controls], api_visibility="private",
                                    queue=False)
            restyled.then(readable(h.sketch_preview_if_files), [files, style, params], [sketch_view, sketch_info],
                          api_visibility="private", **sketch_io)
            moved = [c.release if isinstance(c, gr.Slider) else c.input for c in controls]
            gr.on([files.upload, *moved], readable(h.sketch_from_controls), [files, style, *controls],
                  [params, sketch_view, sketch_info], api_visibility="private", trigger_mode="always_last", **sketch_io)
            params.submit(readable(h.sketch_preview), [files, style, params], [sketch_view, sketch_info],
                          api_name="sketch", **sketch_io)
            run_all.click(readable(h.sketch_all), [runs, files, style, params], [runs, gallery, archive, sketch_info],
                          api_name="sketch_all", **sketch_io)

        with gr.Tab("Models"):
            stages = gr.Markdown(elem_id="models-stages")
            table = gr.Dataframe(headers=["model", "kind", "size", "license", "status"], interactive=False,
                                 wrap=True, elem_id="models-table")
            refresh = gr.Button("Refresh")
            refresh.click(readable(h.models), None, [stages, table], api_name="models", concurrency_id=MODEL_LOCK)
            demo.load(readable(h.models), None, [stages, table], api_visibility="private")

    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    return demo


def _remove_runs(runs: list[str]) -> None:
    for run in runs or []:
        shutil.rmtree(run, ignore_errors=True)


def serve(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False,
          max_file_size: str | int = DEFAULT_MAX_FILE_SIZE, block: bool = True, quiet: bool = False) -> str:
    """Start the server on host:port (loopback unless told); returns the local URL.

    `share=True` opens a public gradio.live tunnel: anyone with the link can use the app.
    With `block=False` the server runs in a thread until `demo.close()`.
    """
    # `_frontend=False` only skips launch()'s reachability probe: one HEAD request with a 3 s timeout
    # that, on a busy machine, fails a server that is up (then launch() raises, asking for share=True).
    _, url, _ = demo.launch(server_name=host, server_port=port, share=share, max_file_size=max_file_size,
                            prevent_thread_lock=not block, show_error=False, quiet=quiet, inbrowser=False,
                            ssr_mode=False, pwa=False, mcp_server=False, state_session_capacity=200,
                            footer_links=["api"], _frontend=False)
    return url
