"""The Edit tab's selection handlers: photo upload, clicks, boxes, typed prompts, text selection, preview.

Everything a user has selected lives in their `Session` (gradio state): the photo, clicks, masks
and the segmenter's refine seed, which goes to the shared segmenter with each click. The
segmenter itself keeps nothing per user, so two people on the same photo never see each other's
masks. Each handler touching a model holds the selection lock (`locks.py`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import gradio as gr
import numpy as np

from ..errors import InvalidInputError, NothingFound
from ..imageio import write_image
from ..overlay import clicks, outline, overlay, tint
from ..types import Detections
from .locks import ModelLocks
from .state import Session
from .uploads import read_photo
from .workspace import Workspace


class SelectionHandlers:
    """Handlers whose outputs are the selection outputs: (session, canvas, mask, instances, clicks, boxes, info)."""

    def __init__(self, locks: ModelLocks, workspace: Workspace, max_pixels: int, display_size: int) -> None:
        self.locks = locks
        self.workspace = workspace
        self.max_pixels = max_pixels
        self.display_size = display_size
        # Encodes the full-size mask PNG while the canvas is drawn (OpenCV releases the GIL).
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="editanything-ui-writer")

    def photo(self, session: Session, photo: str | None) -> Session:
        """The session with `photo` loaded; no photo means the one already loaded (API clients send it once)."""
        if not photo:
            if session.image is None:
                raise InvalidInputError("upload a photo first")
            return session
        if session.source != photo or session.image is None:
            session.set_image(photo, read_photo(photo, self.max_pixels), self.display_size)
        return session

    # ---- events ----

    def load(self, session: Session, photo: str | None, invert: bool, grow: float) -> tuple:
        if not photo:  # the upload was cleared: no photo, but the session's results stay
            session.image = session.display = session.source = session.parent = None
            session.clear()
            return self._outputs(session, invert, grow)
        session.set_image(photo, read_photo(photo, self.max_pixels), self.display_size)
        return self._outputs(session, invert, grow)

    def continue_from(self, session: Session, index: float, invert: bool, grow: float) -> tuple:
        """Result `index` of the history (0 = newest) becomes the photo to edit; the upload box is emptied.

        The next edit's recipe names this result's sha256 as its parent, so a chain of edits can be
        followed back from any of its PNGs.
        """
        entry = session.entry(int(index or 0))
        session.set_image(entry.png, read_photo(entry.png, self.max_pixels), self.display_size, parent=entry)
        return (None, *self._outputs(session, invert, grow))

    def warm(self, session: Session) -> None:
        """Right after an upload: the segmenter's per-image work (SAM's embedding) while the user looks."""
        if session.image is not None:
            with self.locks.selecting() as editor:
                editor.segmenter.prepare(session.image)

    def segment_points(self, session: Session, photo: str | None, points: str, boxes: str, invert: bool,
                       grow: float) -> tuple:
        session = self.photo(session, photo)
        with session.change():
            session.set_prompt(points, boxes)
            return self._segment(session, invert, grow)

    def click(self, session: Session, photo: str | None, mode: str, invert: bool, grow: float, mask_shown: bool,
              evt: gr.SelectData) -> tuple:
        session = self.photo(session, photo)
        x, y = session.to_image(*evt.index[:2])
        with session.change():
            if not session.click(x, y, mode):
                return self._outputs(session, invert, grow, mask_shown)
            return self._segment(session, invert, grow, mask_shown)

    def select_text(self, session: Session, photo: str | None, phrase: str, invert: bool, grow: float) -> tuple:
        session = self.photo(session, photo)
        phrase = (phrase or "").strip()
        if not phrase:
            raise InvalidInputError('type what to select, e.g. "the dog" or "cup . spoon"')
        with session.change():
            session.clear()
            session.text = phrase
            with self.locks.selecting() as editor:
                found = editor.select(session.image, session.prompt())
            session.segmented_by(session.prompt(), found)
            return self._outputs(session, invert, grow)

    def clear(self, session: Session, invert: bool, grow: float) -> tuple:
        session.clear()
        return self._outputs(session, invert, grow)

    def preview(self, session: Session, chosen: list[int], invert: bool, grow: float, mask_shown: bool = True) -> tuple:
        return self.render(session, chosen, invert, grow, mask_shown)

    def show_mask(self, session: Session, chosen: list[int], invert: bool) -> tuple:
        """The mask panel was opened: from now on clicks send the mask too; show the current one."""
        mask = session.mask(chosen, invert)
        if mask is None:
            return True, None
        return True, self._write_mask(session, mask)

    # ---- helpers ----

    def _segment(self, session: Session, invert: bool, grow: float, with_mask: bool = True) -> tuple:
        prompt = session.prompt()
        if not prompt.points and not prompt.boxes:
            session.segmented_by(prompt, None)
            return self._outputs(session, invert, grow, with_mask)
        with self.locks.selecting() as editor:
            detections = editor.segmenter.segment(session.image, prompt, refine=session.refine_seed(prompt))
        if not detections.union_mask().any():
            raise NothingFound("the clicks selected nothing; click inside the object or draw a box around it")
        session.segmented_by(prompt, detections)
        return self._outputs(session, invert, grow, with_mask)

    def _outputs(self, session: Session, invert: bool, grow: float, with_mask: bool = True) -> tuple:
        det = session.detections
        if det is not None and len(det):
            choices = [(label, i) for i, label in enumerate(instance_labels(session))]
            instances = gr.CheckboxGroup(choices=choices, value=list(range(len(det))))
        else:
            instances = gr.CheckboxGroup(choices=[], value=[])
        chosen = list(range(len(det))) if det is not None else None
        canvas, mask = self.render(session, chosen, invert, grow, with_mask)
        return session, canvas, mask, instances, session.points_json(), session.boxes_json(), _info(session)

    def render(self, session: Session, chosen: list[int] | None, invert: bool, grow: float, with_mask: bool = True):
        """Files of the canvas (photo with the selection drawn) and the full-size mask (white = selected).

        Written with our fast encoders (JPEG for the view, fast PNG for the lossless mask); gradio
        then only copies the small files, which keeps a click's round trip short. Without
        `with_mask` the mask output is left as it is (`gr.skip()`): a browser click does not pay
        for a full-size PNG that sits in a closed panel.
        """
        if session.image is None:
            return None, None
        mask = session.mask(chosen, invert)
        mask_file = None
        if with_mask and mask is not None:
            mask_file = self._writer.submit(self._write_mask, session, mask)
        canvas_file = str(write_image(self.workspace.folder(session) / "canvas.jpg",
                                      _draw(session, chosen, invert, grow, mask), quality=90))
        if not with_mask:
            return canvas_file, gr.skip()
        return canvas_file, None if mask_file is None else mask_file.result()

    def _write_mask(self, session: Session, mask: np.ndarray) -> str:
        """The session's mask file (white = selected), written with the fast PNG settings."""
        return str(write_image(self.workspace.folder(session) / "mask.png", mask.astype(np.uint8) * 255))


def instance_labels(session: Session) -> list[str]:
    """Each selected instance in words: what the detector found and how sure it is, or the user's own selection.

    A segmenter's score for clicks or a box is no measure a user can act on, so it is not shown.
    """
    det = session.detections
    if session.text:
        return [f"{phrase} {score:.2f}" for phrase, score in zip(det.phrases, det.scores)]
    return ["your selection"] if len(det) == 1 else [f"your selection {i + 1}" for i in range(len(det))]


def _info(session: Session) -> str:
    if session.image is None:
        return "Upload a photo to start."
    h, w = session.image.shape[:2]
    parts = [f"**{session.title}** {w}×{h}"]
    if session.parent is not None:
        parts.append(f"editing the result of {session.parent.caption}")
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


def _draw(session: Session, chosen: list[int] | None, invert: bool, grow: float,
          mask: np.ndarray | None) -> np.ndarray:
    """The canvas: the shrunk photo with `mask` (the chosen instances' union) and the clicks drawn."""
    s = session.scale
    canvas = session.display
    if mask is not None:
        det = session.detections if chosen is None else session.detections.keep(indices=chosen)
        if invert:
            canvas = tint(canvas, _shrink_mask(mask, canvas.shape))
        else:
            everything = instance_labels(session)
            shown = range(len(everything)) if chosen is None else chosen
            canvas = overlay(canvas, _scaled(det, canvas.shape, s), numbers=chosen,
                             labels=[everything[i] for i in shown])
        if grow > 0 and mask.any():
            canvas = outline(canvas, _grown(_shrink_mask(mask, canvas.shape), grow * s))
    return clicks(canvas, [(x * s, y * s, lab) for x, y, lab in session.points],
                  [tuple(v * s for v in b) for b in session.boxes],
                  None if session.corner is None else (session.corner[0] * s, session.corner[1] * s))


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
