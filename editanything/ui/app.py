"""The web UI's layout: a gradio Blocks app over the same Python API as the CLI (it has no editing logic).

    demo = build_app()                 # Editor() with the best backends on disk, weight-free otherwise
    serve(demo, port=7860)             # 127.0.0.1 unless told; blocks until Ctrl-C or SIGTERM

Tabs: *Edit* (click / box / phrase → mask overlay → Replace, Remove, Background, Recolor; a
History of the session's results, any of which can be edited further), *Generate* (a prompt →
images, each a PNG with its recipe; *Send to Edit* makes one the Edit tab's photo), *Sketch* (photos
or a zip → sketches, live preview, zip download) and *Models* (what is on disk, which backend each
stage uses). Named API endpoints (`gradio_client`): `load`, `segment_points`, `select_text`,
`replace`, `remove`, `background`, `recolor`, `continue_editing`, `cancel`, `expand`,
`prompt_from_photo`, `expand_generate`, `generate`, `send_to_edit`, `sketch`, `sketch_all`, `models`.
Selection endpoints keep the photo, clicks, masks and results in the caller's session, so a client
calls `segment_points` and then `remove` on the same `Client`.

Where things are: uploads and limits `uploads.py`; model locks `locks.py`; selection handlers
`selection.py` (per-user state in `state.py`); edit handlers `editing.py`; generate handlers
`generating.py`; sketch handlers
`sketching.py`; Cancel and closed pages `jobs.py`; the Models tab `models_tab.py`; work files
`workspace.py`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

from .workspace import use_private_gradio_cache

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
use_private_gradio_cache()  # before gradio is imported: some of its modules read GRADIO_TEMP_DIR then

import gradio as gr  # noqa: E402

from ..caption import captioner_on_disk  # noqa: E402
from ..errors import EditAnythingError  # noqa: E402
from ..generate import sampler_names  # noqa: E402
from ..models import download_command  # noqa: E402
from ..pipeline import Editor  # noqa: E402
from ..sketch import STYLES, style_params  # noqa: E402
from .editing import EDIT_MODES, EditHandlers, edit_event  # noqa: E402
from .expanding import ExpandHandlers  # noqa: E402
from .generating import MAX_BATCH, GenerateHandlers, generate_event  # noqa: E402
from .jobs import Jobs  # noqa: E402
from .locks import GENERATION, SELECTION, ModelLocks, share_cores  # noqa: E402
from .models_tab import TABLE_HEADERS, ModelsHandlers  # noqa: E402
from .remote import GENERATORS as HOSTED, LOCAL, PRIVACY_NOTE  # noqa: E402
from .selection import SelectionHandlers  # noqa: E402
from .sketching import SketchHandlers, all_params, param_control  # noqa: E402
from .state import CLICK_MODES, Session  # noqa: E402
from .uploads import DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_PIXELS, ZipLimits, photo_upload  # noqa: E402
from .workspace import Workspace, remove_runs  # noqa: E402

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 16
DISPLAY_SIZE = 1024  # long side of the click canvas; bigger photos are shown shrunk, clicks scaled back
SESSION_TTL = 3 * 3600  # seconds a session's state and files live after its tab closes
__all__ = ["DEFAULT_MAX_FILE_SIZE", "DEFAULT_MAX_PIXELS", "Handlers", "build_app", "serve"]


def readable(fn: Callable) -> Callable:
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


@dataclass
class Handlers:
    """Every handler of the app, over one Editor behind its model locks and one work folder."""

    locks: ModelLocks
    workspace: Workspace
    selection: SelectionHandlers
    editing: EditHandlers
    generating: GenerateHandlers
    sketching: SketchHandlers
    models: ModelsHandlers
    expanding: ExpandHandlers
    jobs: Jobs

    @classmethod
    def create(cls, editor: Editor, *, max_pixels: int = DEFAULT_MAX_PIXELS, display_size: int = DISPLAY_SIZE,
               max_files: int = 500, zip_limits: ZipLimits = ZipLimits(),
               locks: ModelLocks | None = None) -> "Handlers":
        locks, workspace, jobs = locks or ModelLocks(editor), Workspace(), Jobs()
        selection = SelectionHandlers(locks, workspace, max_pixels, display_size)
        return cls(locks, workspace, selection, EditHandlers(locks, workspace, selection, jobs),
                   GenerateHandlers(locks, workspace, selection, jobs),
                   SketchHandlers(workspace, max_pixels, max_files, zip_limits, jobs), ModelsHandlers(locks),
                   ExpandHandlers(locks), jobs)

    def cancel(self, request: gr.Request) -> str:
        """Cancel: the session's running edit or sketch stops at its next step (one queued is dropped by gradio)."""
        n = self.jobs.cancel(getattr(request, "session_hash", None))
        return "Cancelled: the running job stops at its next step." if n else "Nothing was running."

    def closed(self, request: gr.Request) -> None:
        """The browser has gone (gradio's unload): nobody waits for its jobs any more."""
        self.jobs.cancel(getattr(request, "session_hash", None))


def _default_editor() -> Editor:
    captioner = "auto" if captioner_on_disk() is not None else None
    return Editor(captioner=captioner)


def build_app(editor: Editor | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS,
              display_size: int = DISPLAY_SIZE, max_files: int = 500, zip_limits: ZipLimits = ZipLimits(),
              queue_size: int = DEFAULT_QUEUE_SIZE, locks: ModelLocks | None = None) -> gr.Blocks:
    """The gradio app over `editor` (default: `Editor()`, best backends on disk, weight-free otherwise).

    max_pixels: uploads with more pixels are refused with a message (gradio's `max_file_size`,
        set in `serve`, limits the bytes). display_size: long side of the click canvas.
    max_files: photos per sketch run; zip_limits: what one uploaded zip may hold.
    queue_size: requests waiting at most; more are turned away.
    locks: the model locks of `editor` when something else uses it too (`ui --api`), so they take turns.
    """
    share_cores()
    h = Handlers.create(editor or _default_editor(), max_pixels=max_pixels, display_size=display_size,
                        max_files=max_files, zip_limits=zip_limits, locks=locks)
    with gr.Blocks(title="editanything", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as demo:
        gr.Markdown("## editanything — click to select, then replace, remove or restyle")
        with gr.Tabs() as tabs:
            with gr.Tab("Edit", id="edit"):
                ui = _edit_tab(h)
            with gr.Tab("Generate", id="generate"):
                _generate_tab(h, ui, tabs)
            with gr.Tab("Sketch", id="sketch"):
                _sketch_tab(h)
            with gr.Tab("Models", id="models"):
                _models_tab(demo, h.models)
        demo.unload(h.closed)
    # One request at a time per concurrency group; the groups are the model locks' (see locks.py).
    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    return demo


def _edit_tab(h: Handlers) -> SimpleNamespace:
    ui = _edit_layout(h)
    _wire_selection(h.selection, ui)
    settings = [ui.instances, ui.invert, ui.grow, ui.feather, ui.prompt, ui.negative, ui.sampler, ui.steps, ui.cfg,
                ui.seed, ui.strength, ui.color, ui.generator, ui.soft_edges]  # EditSettings' fields, in order
    ui.generator.input(readable(h.editing.defaults), ui.generator, [ui.sampler, ui.steps, ui.cfg],
                       api_visibility="private", queue=False)
    # Progress and an error's badge go on the status line only: a failed edit leaves the last result, and
    # the line saying how it was made, on screen.
    edits = [button.click(readable(edit_event(h.editing, m)), [ui.session, ui.photo, *settings],
                          [ui.result, ui.compare, ui.download, ui.edit_info, ui.history], api_name=m,
                          concurrency_id=GENERATION, show_progress_on=[ui.status])
             for m, button in ui.buttons.items()]
    for edit in edits:
        edit.success(lambda: "", None, ui.status, api_visibility="private", queue=False)
    ui.cutout.click(readable(h.editing.cutout), [ui.session, ui.photo, ui.instances, ui.invert],
                    [ui.download, ui.edit_info], api_name="cutout", concurrency_id=SELECTION,
                    show_progress_on=[ui.status])
    # gradio drops a queued edit and stops waiting for a running one; the job itself stops at its next step
    ui.cancel.click(h.cancel, None, ui.status, api_name="cancel", cancels=edits, queue=False)
    ui.expand.click(readable(h.expanding.expand), [ui.prompt, ui.negative, ui.generator, ui.seed],
                    [ui.prompt, ui.negative, ui.expand_info], api_name="expand", concurrency_id="expand")
    ui.from_photo.click(readable(h.expanding.from_photo), [ui.session, ui.negative, ui.generator, ui.seed],
                        [ui.prompt, ui.negative, ui.expand_info], api_name="prompt_from_photo",
                        concurrency_id=GENERATION, show_progress_on=[ui.expand_info])
    _wire_history(h, ui)
    return ui


def _generate_tab(h: Handlers, edit: SimpleNamespace, tabs: gr.Tabs) -> None:
    """Prompt, negative, sampler, steps, CFG, size, seed, batch → images with their PNGs; Send to Edit."""
    g = h.generating
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", scale=3, elem_id="gen-prompt")
        negative = gr.Textbox(label="Negative prompt", scale=2, elem_id="gen-negative")
        expand = gr.Button("Expand", scale=0, min_width=90, elem_id="gen-expand")
    expand_info = gr.Markdown(elem_id="gen-expand-info")
    with gr.Row():
        generator = gr.Dropdown(list(HOSTED), value=LOCAL, label="Generate on", scale=1, elem_id="gen-generator")
        gr.Markdown("With **Stability AI** or **OpenAI** the prompt goes to that service (keys are read on the "
                    "server from `STABILITY_API_KEY` / `OPENAI_API_KEY`); they take no sampler, steps or CFG.")
    with gr.Row():
        sampler, steps, cfg = g.defaults(LOCAL)  # this machine's text-to-image model's
        sampler = gr.Dropdown(sampler_names(), value=sampler, label="Sampler", elem_id="gen-sampler")
        steps = gr.Slider(1, 100, value=steps, step=1, label="Steps", elem_id="gen-steps")
        cfg = gr.Slider(0, 30, value=cfg, step=0.5, label="CFG scale", elem_id="gen-cfg")
    with gr.Row():
        width = gr.Slider(0, 2048, value=0, step=8, label="Width (0 = the model's own size)", elem_id="gen-width")
        height = gr.Slider(0, 2048, value=0, step=8, label="Height (0 = the model's own size)", elem_id="gen-height")
        seed = gr.Number(value=-1, precision=0, label="Seed (-1 = random)", elem_id="gen-seed")
        batch = gr.Slider(1, MAX_BATCH, value=1, step=1, label="Batch size", elem_id="gen-batch")
    with gr.Row():
        run = gr.Button("Generate", variant="primary", elem_id="btn-generate")
        cancel = gr.Button("Cancel", variant="stop", elem_id="gen-cancel")
    status = gr.Markdown(elem_id="gen-status", min_height=36)
    info = gr.Markdown(elem_id="gen-info")
    gallery = gr.Gallery(label="Generated (pick one)", columns=4, height=420, object_fit="contain", format="png",
                         allow_preview=False, elem_id="gen-gallery")
    download = gr.File(label="Download PNGs with recipe", file_count="multiple", interactive=False, height=90,
                       elem_id="gen-download")
    with gr.Row():
        picked = gr.Number(value=0, precision=0, minimum=0, label="Picked image (0 = first)", elem_id="gen-picked")
        send = gr.Button("Send to Edit", elem_id="btn-send-to-edit")
    generator.input(readable(g.defaults), generator, [sampler, steps, cfg], api_visibility="private", queue=False)
    expand.click(readable(h.expanding.expand_generate), [edit.session, prompt, negative, generator, seed],
                 [edit.session, prompt, negative, expand_info], api_name="expand_generate", concurrency_id="expand")
    made = run.click(readable(generate_event(g)), [edit.session, prompt, negative, sampler, steps, cfg, width, height,
                                                  seed, batch, generator],
                     [edit.session, gallery, download, info, edit.history], api_name="generate",
                     concurrency_id=GENERATION, show_progress_on=[status])
    made.success(lambda: (0, ""), None, [picked, status], api_visibility="private", queue=False)
    cancel.click(h.cancel, None, status, api_visibility="private", cancels=[made], queue=False)
    gallery.select(g.pick, None, picked, api_visibility="private", queue=False)
    # the picked image becomes the Edit tab's photo (as History's Continue editing), and that tab opens
    send.click(readable(g.send_to_edit), [edit.session, picked, edit.invert, edit.grow],
               [edit.photo, edit.session, edit.canvas, edit.mask_view, edit.instances, edit.points, edit.boxes,
                edit.info], api_name="send_to_edit", concurrency_id=SELECTION, show_progress_on=[info]
               ).success(lambda: gr.Tabs(selected="edit"), None, tabs, api_visibility="private", queue=False
                         ).then(readable(h.selection.warm), [edit.session], None, api_visibility="private",
                                concurrency_id=SELECTION)


def _wire_history(h: Handlers, ui: SimpleNamespace) -> None:
    """Picking a result in the History offers its PNG; *Continue editing from this* makes it the photo."""
    ui.history.select(readable(h.editing.pick), [ui.session], [ui.picked, ui.download, ui.edit_info],
                      api_visibility="private", queue=False)
    ui.continue_from.click(readable(h.selection.continue_from), [ui.session, ui.picked, ui.invert, ui.grow],
                           [ui.photo, ui.session, ui.canvas, ui.mask_view, ui.instances, ui.points, ui.boxes,
                            ui.info], api_name="continue_editing", concurrency_id=SELECTION,
                           show_progress_on=[ui.info]).then(readable(h.selection.warm), [ui.session], None,
                                                            api_visibility="private", concurrency_id=SELECTION)


def _edit_layout(h: Handlers) -> SimpleNamespace:
    """The Edit tab's components, by name."""
    ui = SimpleNamespace()
    gr.Markdown(h.models.banner())
    ui.session = gr.State(Session(), time_to_live=SESSION_TTL, delete_callback=h.workspace.forget)
    ui.mask_shown = gr.State(False)  # is the mask panel open (else clicks skip the full-size mask file)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            ui.photo = photo_upload(label="Photo", sources=["upload", "clipboard"], height=220, elem_id="photo")
            ui.mode = gr.Radio(list(CLICK_MODES), value=CLICK_MODES[0], label="A click on the canvas does",
                               elem_id="click-mode")
            with gr.Row():
                ui.phrase = gr.Textbox(label="…or select by text", placeholder="the dog . red car", scale=3)
                ui.find = gr.Button("Select", scale=1)
            ui.instances = gr.CheckboxGroup(label="Selected instances", type="value", elem_id="instances")
            with gr.Row():
                ui.invert = gr.Checkbox(label="Invert selection", value=False)
                ui.clear = gr.Button("Clear selection", size="sm")
            ui.grow = gr.Slider(0, 64, value=8, step=1, label="Grow (px): edits may reach this far out")
            ui.feather = gr.Slider(0, 64, value=8, step=1,
                                   label="Feather (px): blend width at the edited area's edge")
            ui.soft_edges = gr.Checkbox(label="Soft edges: an alpha matte at the subject's edge (hair, fur) for "
                                              "Background and Recolor", value=False, elem_id="soft-edges")
            with gr.Accordion("Clicks, boxes and mask", open=False) as ui.details:
                ui.points = gr.Textbox(label="Clicks [[x, y, 1=add / 0=exclude], …]", value="[]")
                ui.boxes = gr.Textbox(label="Boxes [[x0, y0, x1, y1], …]", value="[]")
                ui.resegment = gr.Button("Segment these")
                ui.mask_view = gr.Image(label="Mask (white = selected)", format="png", interactive=False,
                                        height=160, elem_id="mask-view")
        with gr.Column(scale=2):
            ui.canvas = gr.Image(label="Click on the object", interactive=False, format="jpeg",
                                 elem_id="canvas", height=560, buttons=["fullscreen"])
            ui.info = gr.Markdown("Upload a photo to start.", elem_id="selection-info")
    with gr.Row():
        ui.prompt = gr.Textbox(label="Prompt (Replace / Background)", scale=3)
        ui.negative = gr.Textbox(label="Negative prompt", scale=2)
        ui.expand = gr.Button("Expand", scale=0, min_width=90, elem_id="btn-expand")
        ui.from_photo = gr.Button("From photo", scale=0, min_width=110, elem_id="btn-prompt-from-photo")
    ui.expand_info = gr.Markdown(elem_id="expand-info")
    with gr.Row():
        ui.generator = gr.Dropdown(list(HOSTED), value=LOCAL, label="Generate on", scale=1, elem_id="generator")
        gr.Markdown(PRIVACY_NOTE, elem_id="generator-note")
    with gr.Accordion("Generation settings", open=False):
        with gr.Row():
            # the model's defaults (editing.py); back to those of wherever it runs when "Generate on" changes
            sampler, steps, cfg = h.editing.defaults(LOCAL)
            ui.sampler = gr.Dropdown(sampler_names(), value=sampler, label="Sampler", elem_id="sampler")
            ui.steps = gr.Slider(1, 100, value=steps, step=1, label="Steps", elem_id="steps")
            ui.cfg = gr.Slider(0, 30, value=cfg, step=0.5, label="CFG scale", elem_id="cfg")
            ui.seed = gr.Number(value=-1, precision=0, label="Seed (-1 = random)")
            ui.strength = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Denoising strength")
            ui.color = gr.ColorPicker(value="#d03030", label="Recolor with")
    with gr.Row():
        ui.buttons = {m: gr.Button(m.capitalize(), variant="primary" if m == "remove" else "secondary",
                                   elem_id=f"btn-{m}") for m in EDIT_MODES}
        ui.cancel = gr.Button("Cancel", variant="stop", elem_id="btn-cancel")
        ui.cutout = gr.Button("Cut-out PNG", elem_id="btn-cutout")
    ui.status = gr.Markdown(elem_id="edit-status", min_height=36)  # a running edit's progress, an error's badge
    ui.edit_info = gr.Markdown(elem_id="edit-info")
    with gr.Row():
        ui.result = gr.Image(label="Result (lossless PNG)", format="png", interactive=False, elem_id="result")
        ui.compare = gr.ImageSlider(label="Before / after", format="jpeg", interactive=False, elem_id="compare")
    ui.download = gr.File(label="Download PNG with recipe", interactive=False, elem_id="download", height=90)
    with gr.Row():
        ui.history = gr.Gallery(label="History (this session's results, newest first; pick one)", columns=8,
                                fit_columns=False, height=280, object_fit="contain", allow_preview=False,
                                elem_id="history", scale=4)
        with gr.Column(scale=1, min_width=200):
            ui.picked = gr.Number(value=0, precision=0, minimum=0, label="Picked result (0 = newest)",
                                  elem_id="picked")
            ui.continue_from = gr.Button("Continue editing from this", elem_id="btn-continue")
    return ui


def _wire_selection(s: SelectionHandlers, ui: SimpleNamespace) -> None:
    """Uploads, clicks, typed prompts, text selection and preview: the selection queue group."""
    out = [ui.session, ui.canvas, ui.mask_view, ui.instances, ui.points, ui.boxes, ui.info]
    # A failed click or phrase leaves the canvas and mask as they were: progress and errors show on the info line.
    selecting = dict(concurrency_id=SELECTION, show_progress="minimal", show_progress_on=[ui.info])
    private = dict(api_visibility="private", **selecting)
    ui.photo.upload(readable(s.load), [ui.session, ui.photo, ui.invert, ui.grow], out, api_name="load", **selecting
                    ).then(readable(s.warm), [ui.session], None, **private)
    ui.photo.clear(readable(s.load), [ui.session, ui.photo, ui.invert, ui.grow], out, **private)
    ui.canvas.select(readable(s.click), [ui.session, ui.photo, ui.mode, ui.invert, ui.grow, ui.mask_shown], out,
                     **private)
    ui.details.expand(readable(s.show_mask), [ui.session, ui.instances, ui.invert], [ui.mask_shown, ui.mask_view],
                      **private)
    ui.details.collapse(lambda: False, None, ui.mask_shown, api_visibility="private", queue=False)
    gr.on([ui.resegment.click, ui.points.submit, ui.boxes.submit], readable(s.segment_points),
          [ui.session, ui.photo, ui.points, ui.boxes, ui.invert, ui.grow], out, api_name="segment_points",
          **selecting)
    gr.on([ui.find.click, ui.phrase.submit], readable(s.select_text),
          [ui.session, ui.photo, ui.phrase, ui.invert, ui.grow], out, api_name="select_text", **selecting)
    ui.clear.click(readable(s.clear), [ui.session, ui.invert, ui.grow], out, **private)
    gr.on([ui.instances.input, ui.invert.input, ui.grow.release], readable(s.preview),
          [ui.session, ui.instances, ui.invert, ui.grow, ui.mask_shown], [ui.canvas, ui.mask_view],
          api_visibility="undocumented", show_progress="hidden", show_progress_on=[ui.info], concurrency_id=SELECTION)


def _sketch_tab(handlers: Handlers) -> None:
    h = handlers.sketching
    runs = gr.State([], time_to_live=SESSION_TTL, delete_callback=remove_runs)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            files = gr.File(label="Photos (several files or a .zip)", file_count="multiple",
                            file_types=["image", ".zip"], elem_id="sketch-files")
            style = gr.Dropdown(list(STYLES), value="pencil", label="Style",
                                info="hed styles need `" + download_command("hed") + "`")
            controls = [param_control(name, default, name in style_params("pencil"))
                        for name, default in all_params().items()]
            with gr.Accordion("Parameters as JSON (as the sketch API endpoints take them)", open=False):
                params = gr.Textbox(show_label=False, value=json.dumps(style_params("pencil")), elem_id="sketch-json")
            with gr.Row():
                run_all = gr.Button("Sketch all and zip", variant="primary", scale=3)
                cancel = gr.Button("Cancel", variant="stop", elem_id="sketch-cancel", scale=1)
        with gr.Column(scale=2):
            sketch_view = gr.Image(label="Live preview (first photo)", format="png", interactive=False, height=480)
            sketch_info = gr.Markdown()
            gallery = gr.Gallery(label="Sketches", columns=4, height=300, format="png")
            archive = gr.File(label="Download all (zip)", interactive=False, height=90)
    # A failed preview or run leaves the last sketches shown: progress and errors show on the info line.
    sketch_io = dict(concurrency_id="sketch", show_progress="minimal", show_progress_on=[sketch_info])
    restyled = style.change(readable(h.style), style, [params, *controls], api_visibility="private", queue=False)
    restyled.then(readable(h.preview_if_files), [files, style, params], [sketch_view, sketch_info],
                  api_visibility="private", **sketch_io)
    moved = [c.release if isinstance(c, gr.Slider) else c.input for c in controls]
    gr.on([files.upload, *moved], readable(h.from_controls), [files, style, *controls],
          [params, sketch_view, sketch_info], api_visibility="private", trigger_mode="always_last", **sketch_io)
    params.submit(readable(h.preview), [files, style, params], [sketch_view, sketch_info], api_name="sketch",
                  **sketch_io)
    run = run_all.click(readable(h.sketch_all), [runs, files, style, params], [runs, gallery, archive, sketch_info],
                        api_name="sketch_all", **sketch_io)
    cancel.click(handlers.cancel, None, sketch_info, api_visibility="private", cancels=[run], queue=False)


def _models_tab(demo: gr.Blocks, h: ModelsHandlers) -> None:
    stages = gr.Markdown(elem_id="models-stages")
    # the status column takes the room left, so its download command wraps instead of running off the edge
    table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, wrap=True, elem_id="models-table",
                         column_widths=["19%", "13%", "7%", "13%", "48%"], max_height=2000)
    refresh = gr.Button("Refresh")
    # Each stage is described under its model lock (models_tab.py); a long edit never holds up a page load.
    refresh.click(readable(h.models), None, [stages, table], api_name="models", concurrency_id="models")
    demo.load(readable(h.models), None, [stages, table], api_visibility="private", concurrency_id="models")


def serve(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False,
          max_file_size: str | int = DEFAULT_MAX_FILE_SIZE, block: bool = True, quiet: bool = False,
          add_routes: Callable | None = None) -> str:
    """Start the server on host:port (loopback unless told); returns the local URL.

    `share=True` opens a public gradio.live tunnel: anyone with the link can use the app.
    With `block=False` the server runs in a thread until `demo.close()`. Blocking, SIGTERM stops it
    as Ctrl-C does, so the process exits normally and its work folder is removed.
    `add_routes(app)` adds routes to gradio's FastAPI app once it exists (`ui --api`: the WebUI API).
    """
    if block and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    # `_frontend=False` only skips launch()'s reachability probe: one HEAD request with a 3 s timeout
    # that, on a busy machine, fails a server that is up (then launch() raises, asking for share=True).
    app, url, _ = demo.launch(server_name=host, server_port=port, share=share, max_file_size=max_file_size,
                              prevent_thread_lock=not block or add_routes is not None, show_error=False, quiet=quiet,
                              inbrowser=False, ssr_mode=False, pwa=False, mcp_server=False,
                              state_session_capacity=200, footer_links=["api"], _frontend=False)
    if add_routes is not None:
        add_routes(app)
        if block:
            demo.block_thread()
    return url


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
