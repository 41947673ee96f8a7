"""The Generate tab's handlers: a prompt → images (Editor.generate), each saved as a PNG with its recipe.

The controls' values travel as one `GenerateSettings`; `generate_event` is the gradio function of the
Generate button, named after the settings' fields so API clients call it by name
(`client.predict(prompt="a fox", seed=7, api_name="/generate")`). A local generation holds the
generation lock (`locks.py`); a hosted one holds no model and no lock. Each image goes into the
session's History too, so *Send to Edit* (or the Edit tab's *Continue editing from this*) opens it
in the Edit tab as the photo to edit, its recipe named as the parent of the edits made from it.
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

from ..errors import EditAnythingError, InvalidInputError
from ..generate import WEBUI_DEFAULTS, model_defaults
from ..generation import GenerateRequest, GenerateResult
from ..imageio import limit_size, write_image
from ..models.store import sha256_file
from ..progress import Step
from ..types import GenerationParams
from .jobs import Jobs
from .locks import ModelLocks
from .remote import GENERATORS as HOSTED, LOCAL, hosted_editor
from .selection import SelectionHandlers
from .state import HistoryEntry, Session
from .workspace import Workspace

THUMBNAIL_SIZE = 256  # long side of a History thumbnail, as the Edit tab's
MAX_BATCH = 8  # images one click makes at most (the slider's maximum, which gradio enforces)


@dataclass(frozen=True)
class GenerateSettings:
    """The Generate tab's controls, in the order the gradio inputs list them."""

    prompt: str
    negative: str
    sampler: str
    steps: float
    cfg: float
    width: float  # 0 = the model's own size
    height: float
    seed: float  # -1 = random
    batch_size: float
    generator: str = LOCAL  # this machine, or a hosted service (remote.py)

    def request(self, expansion: dict[str, Any] | None = None) -> GenerateRequest:
        width, height = int(self.width or 0), int(self.height or 0)
        if (width == 0) != (height == 0):
            raise InvalidInputError("set both width and height, or both to 0 (the model's own size)")
        params = GenerationParams(prompt=self.prompt or "", negative_prompt=self.negative or "", sampler=self.sampler,
                                  steps=int(self.steps), cfg_scale=float(self.cfg), seed=int(self.seed),
                                  batch_size=int(self.batch_size), width=width or None, height=height or None)
        return GenerateRequest(params, expansion=expansion)


class GenerateHandlers:
    def __init__(self, locks: ModelLocks, workspace: Workspace, selection: SelectionHandlers, jobs: Jobs) -> None:
        self.locks = locks
        self.workspace = workspace
        self.selection = selection
        self.jobs = jobs
        self.local_defaults = _text_defaults(locks.editor)
        """The sampler, steps and CFG scale this machine's text-to-image model recommends."""

    def defaults(self, choice: str | None) -> tuple[str, int, float]:
        """(sampler, steps, CFG) for the controls when the generation runs at `choice` (a hosted service takes
        none of them: the WebUI's values, which it treats as unset)."""
        d = WEBUI_DEFAULTS if HOSTED.get(choice) else self.local_defaults
        return d["sampler"], d["steps"], d["cfg_scale"]

    def generate(self, session: Session, settings: GenerateSettings, progress: Any = None,
                 key: str | None = None) -> tuple:
        """(session, [(PNG, caption)] of this run, the PNGs to download, message, the History gallery)."""
        report = progress if progress is not None else (lambda *a, **k: None)
        report(0.0, desc="generate: preparing")
        # the last Expand's words and expansion go in the recipe while the prompt is still its prompt
        expansion = session.expansion
        request = settings.request(expansion if expansion and expansion["prompt"] == settings.prompt else None)
        hosted = hosted_editor(settings.generator)  # holds no model: needs no lock
        start = time.perf_counter()

        def step(done: Step) -> None:
            report((done.step + 1, done.steps), desc="generate: step", unit="steps")

        with self.jobs.running(key, step) as job, nullcontext(hosted) if hosted else self.locks.generating() as editor:
            result = editor.generate(request)
            job.check()  # pressed after the last step: nothing is kept
        seconds = time.perf_counter() - start
        report(1.0, desc="saving")
        entries = self._keep(session, result)
        made = [(e.png, e.caption) for e in entries]
        generator = result.recipe.models.get("generator", {})
        size = "x".join(str(s) for s in result.recipe.parameters["generation_size"])
        info = (f"{len(entries)} image{'s' * (len(entries) > 1)} at {size} in {seconds:.1f} s with "
                f"{generator.get('name', '?')}. Each PNG carries its recipe (`editanything replay` makes it again); "
                "pick one and *Send to Edit* to edit it.")
        return session, made, [e.png for e in entries], info, [(e.thumbnail, e.caption) for e in session.history]

    @staticmethod
    def pick(evt: gr.SelectData) -> int:
        """A generated image was picked in the gallery: its index, for Send to Edit."""
        return evt.index

    def send_to_edit(self, session: Session, index: float, invert: bool, grow: float) -> tuple:
        """Image `index` of the last generation (0 = first) becomes the Edit tab's photo, as *Continue editing
        from this* makes a result the photo: (upload box emptied, the selection outputs)."""
        index = int(index or 0)
        if not session.generated:
            raise InvalidInputError("nothing generated yet: write a prompt and press Generate first")
        if not 0 <= index < len(session.generated):
            raise InvalidInputError(f"no image {index} in the last generation; it made {len(session.generated)} "
                                    "(0 = first)")
        png = session.generated[index]
        at = next((i for i, e in enumerate(session.history) if e.png == png), None)
        if at is None:
            raise InvalidInputError(f"image {index} of the last generation has left the History (it keeps "
                                    f"{len(session.history)}); generate again")
        if session.title is None:  # nothing uploaded yet: the edits made from it are named after it
            session.title = Path(png).name
        return self.selection.continue_from(session, at, invert, grow)

    def _keep(self, session: Session, result: GenerateResult) -> list[HistoryEntry]:
        """Save every image with its recipe into the session's folder and History (first image first)."""
        folder = self.workspace.folder(session)
        entries = []
        for i in range(len(result.images)):
            session.made += 1
            name = f"generated-{session.made}"
            png = result.save(folder / f"{name}.png", i)
            thumbnail = write_image(folder / f"{name}.thumb.jpg", limit_size(result.images[i], THUMBNAIL_SIZE),
                                    quality=85)
            seed = result.recipe.seed + i if result.recipe.seed is not None and result.recipe.parameters.get(
                "sampled") else None
            entries.append(HistoryEntry(str(png), str(thumbnail), "generate", seed, sha256_file(png)))
        for entry in entries:
            for old in session.add_result(entry):
                Path(old.png).unlink(missing_ok=True)
                Path(old.thumbnail).unlink(missing_ok=True)
        session.generated = [e.png for e in entries]
        return entries


def _text_defaults(editor: Any) -> dict[str, Any]:
    """The editor's text-to-image model's defaults; the WebUI's when none can be built (Generate will say why)."""
    try:
        return model_defaults(editor.text_generator)
    except EditAnythingError:
        return dict(WEBUI_DEFAULTS)


def generate_event(handlers: GenerateHandlers) -> Callable:
    """The gradio function of the Generate button: (session, *the settings' fields) → outputs, its parameters
    named after the fields (gradio names an endpoint's parameters after its function's signature)."""

    def generate(session: Session, *values: Any) -> tuple:
        *fields, progress, request = values  # gradio passes the Progress and the request last
        return handlers.generate(session, GenerateSettings(*fields), progress, getattr(request, "session_hash", None))

    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    names = ["session", *(f.name for f in dataclasses.fields(GenerateSettings))]
    generate.__signature__ = inspect.Signature(
        [inspect.Parameter(name, positional) for name in names]
        + [inspect.Parameter("progress", positional, default=gr.Progress()),
           inspect.Parameter("request", positional, default=None, annotation=gr.Request)])
    generate.__annotations__ = {"request": gr.Request}  # gradio finds the request parameter by its type hint
    return generate
