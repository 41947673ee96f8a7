"""The Edit tab's edit handlers: Replace, Remove, Background and Recolor on the session's selection.

The controls' values travel as one `EditSettings`; `edit_event` is the gradio function of one
button, named after the settings' fields so API clients call them by name. An edit holds the
generation lock only (`locks.py`), so other users keep clicking while a diffusion edit runs.
The sampler, steps and CFG controls start at this machine's model's defaults (Euler, 4 steps, CFG 1
for the distilled FLUX.2 klein) and go back to the defaults of wherever the edit will run when the
"Generate on" choice changes; what the user then sets is sent as set.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import numpy as np

from ..errors import EditAnythingError, NothingFound
from ..generate import WEBUI_DEFAULTS, GenerationParams, model_defaults
from ..imageio import limit_size, write_image
from ..matte import compute_matte
from ..models.store import sha256_file
from ..pipeline import MATTE_MODES, EditRequest, EditResult
from ..progress import Step
from .jobs import Jobs
from .locks import ModelLocks
from .remote import GENERATORS as HOSTED, LOCAL, hosted_editor
from .selection import SelectionHandlers
from .state import HistoryEntry, Session
from .workspace import Workspace

EDIT_MODES = ("replace", "remove", "background", "recolor")
THUMBNAIL_SIZE = 256  # long side of a History thumbnail


@dataclass(frozen=True)
class EditSettings:
    """The Edit tab's controls for one edit, in the order the gradio inputs list them."""

    chosen: list[int]  # the selected instances' indices
    invert: bool
    grow: float
    feather: float
    prompt: str
    negative: str
    sampler: str
    steps: float
    cfg: float
    seed: float  # -1 = random
    strength: float
    color: str  # for recolor
    generator: str = LOCAL  # this machine, or a hosted service (remote.py)
    soft_edges: bool = False  # an alpha matte at the kept subject's edge (Background, Recolor)

    def request(self, mode: str, session: Session, mask: np.ndarray) -> EditRequest:
        params = GenerationParams(prompt=self.prompt or "", negative_prompt=self.negative or "", sampler=self.sampler,
                                  steps=int(self.steps), cfg_scale=float(self.cfg), strength=float(self.strength),
                                  seed=int(self.seed))
        return EditRequest(mode=mode, selection=session.prompt(), mask=mask, params=params, grow=float(self.grow),
                           feather=float(self.feather), color=self.color if mode == "recolor" else None,
                           matte=bool(self.soft_edges) and mode in MATTE_MODES)


class EditHandlers:
    def __init__(self, locks: ModelLocks, workspace: Workspace, selection: SelectionHandlers, jobs: Jobs) -> None:
        self.locks = locks
        self.workspace = workspace
        self.selection = selection
        self.jobs = jobs
        self.local_defaults = _generator_defaults(locks.editor)
        """The sampler, steps and CFG scale this machine's generator recommends (fixed for the app's life)."""

    def defaults(self, choice: str | None) -> tuple[str, int, float]:
        """(sampler, steps, CFG) for the controls when the edit runs at `choice`: this machine's model's
        defaults, or the WebUI's for a hosted service (which takes none of these settings)."""
        d = WEBUI_DEFAULTS if HOSTED.get(choice) else self.local_defaults
        return d["sampler"], d["steps"], d["cfg_scale"]

    def edit(self, mode: str, session: Session, photo: str | None, settings: EditSettings,
             progress: Any = None, key: str | None = None) -> tuple:
        """(result, (before, after), PNG file with the recipe, message, history) for the session's selection.

        `key` names the browser session, whose Cancel (or closing) stops the edit at its next step.
        """
        session = self.selection.photo(session, photo)
        mask = session.mask(settings.chosen, settings.invert)
        if mask is None or not mask.any():
            raise NothingFound("select something first: click on the object, draw a box or type a phrase")
        # gradio's Progress is falsy until it tracks an iterable (it has a __len__), so test for None.
        report = progress if progress is not None else (lambda *a, **k: None)
        report(0.0, desc=f"{mode}: preparing")
        request = settings.request(mode, session, mask)
        start = time.perf_counter()
        hosted = hosted_editor(settings.generator)  # holds no model: needs no lock
        def step(done: Step) -> None:
            report((done.step + 1, done.steps), desc=f"{mode}: step", unit="steps")

        with self.jobs.running(key, step) as job, nullcontext(hosted) if hosted else self.locks.generating() as editor:
            result = editor.edit(session.image, request, name=Path(session.source).name)
            job.check()  # pressed after the last step: nothing is kept
        seconds = time.perf_counter() - start
        report(1.0, desc="saving")
        entry = self._keep(session, mode, result)
        after = result.images[0]
        generator = result.recipe.models.get("generator", {}).get("name", "?")
        seed = "" if entry.seed is None else f", seed {entry.seed}"
        kept = {"background": "the selection itself is unchanged",
                "recolor": "pixels outside the selection are unchanged"}.get(
            mode, f"pixels farther than {settings.grow:g} px outside the selection are unchanged")
        info = (f"{mode} done in {seconds:.1f} s with {generator}{seed}; {kept}. "
                "The PNG below carries the recipe (`editanything replay` re-runs it).")
        return after, (session.image, after), entry.png, info, history_gallery(session)

    def cutout(self, session: Session, photo: str | None, chosen: list[int], invert: bool) -> tuple[str, str]:
        """(an RGBA PNG of the selection with soft edges, what it is): the alpha matte of the selection and
        the subject's own colours in its band, on transparency."""
        session = self.selection.photo(session, photo)
        mask = session.mask(chosen, invert)
        if mask is None or not mask.any():
            raise NothingFound("select something first: click on the object, draw a box or type a phrase")
        matte = compute_matte(session.image, mask, self.locks.editor.matter)  # the editor's, built once
        path = write_image(self.workspace.folder(session) / f"{Path(session.title or 'photo').stem}-cutout.png",
                           matte.cutout(session.image))
        return str(path), (f"Cut-out of the selection with soft edges (a {matte.band:g} px band solved by "
                           f"{matte.backend}): a PNG with transparency.")

    def pick(self, session: Session, evt: gr.SelectData) -> tuple:
        """A History thumbnail was picked: (its index, its PNG to download, what made it)."""
        entry = session.entry(evt.index)
        return evt.index, entry.png, f"Picked result {evt.index}: {entry.caption}."

    def _keep(self, session: Session, mode: str, result: EditResult) -> HistoryEntry:
        """Save the result with its recipe (naming the result it was made from) into the session's history."""
        recipe = result.recipe
        if session.parent is not None:
            recipe.inputs["parent_sha256"] = session.parent.sha256
        session.made += 1
        folder = self.workspace.folder(session)
        name = f"{Path(session.title or 'photo').stem}-{session.made}-{mode}"
        png = result.save(folder / f"{name}.png")
        thumbnail = write_image(folder / f"{name}.thumb.jpg", limit_size(result.images[0], THUMBNAIL_SIZE),
                                quality=85)
        # Only a sampler uses the seed: OpenCV's fill, LaMa and a recolor don't claim one.
        seed = recipe.seed if recipe.parameters.get("sampled") else None
        entry = HistoryEntry(str(png), str(thumbnail), mode, seed, sha256_file(png))
        for old in session.add_result(entry):
            Path(old.png).unlink(missing_ok=True)
            Path(old.thumbnail).unlink(missing_ok=True)
        return entry


def history_gallery(session: Session) -> list[tuple[str, str]]:
    """The History gallery's value: (thumbnail, caption) per result, newest first."""
    return [(e.thumbnail, e.caption) for e in session.history]


def _generator_defaults(editor: Any) -> dict[str, Any]:
    """The editor's generator's defaults; the WebUI's when it can't be built (the edit will say why)."""
    try:
        return model_defaults(editor.generator)
    except EditAnythingError:
        return dict(WEBUI_DEFAULTS)


def edit_event(handlers: EditHandlers, mode: str) -> Callable:
    """The gradio function of one edit button: (session, photo, *the settings' fields) → outputs.

    gradio names an endpoint's parameters after its function's signature, so the signature lists
    the fields: clients call `client.predict(photo=None, chosen=[0], prompt="…", api_name="/replace")`.
    """

    def event(session: Session, photo: str | None, *values: Any) -> tuple:
        # gradio passes the Progress and the request last, where the signature declares them
        *fields, progress, request = values
        return handlers.edit(mode, session, photo, EditSettings(*fields), progress,
                             getattr(request, "session_hash", None))

    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    names = ["session", "photo", *(f.name for f in dataclasses.fields(EditSettings))]
    event.__signature__ = inspect.Signature(
        [inspect.Parameter(name, positional) for name in names]
        + [inspect.Parameter("progress", positional, default=gr.Progress()),
           inspect.Parameter("request", positional, default=None, annotation=gr.Request)])
    event.__annotations__ = {"request": gr.Request}  # gradio finds the request parameter by its type hint
    event.__name__ = mode
    return event
