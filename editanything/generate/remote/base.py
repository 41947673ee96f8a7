"""What the hosted generators share: the Generator protocol's side, binding to an edit, dry runs, the recipe.

A remote generator receives only the crop compose.py cuts around the mask (the whole photo only with
`--full-image`) and returns images the crop's size; compose.py pastes them back, so pixels outside the
grown mask stay bit-identical whatever the service sent. `for_edit(request)` gives a copy bound to one
edit (mode, selection text); each call returns the request ids and parameters it sent, for the recipe
(`Generated.model["requests"]`), so one generator serves concurrent calls.
"""

from __future__ import annotations

import base64
import copy
import io
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ...errors import EditAnythingError, InvalidInputError, RemoteServiceError
from ...imageio import max_pixels_default
from ...types import GenerationParams, check_mask, check_rgb
from ..generated import Generated, changed
from ..params import WEBUI_DEFAULTS
from .http import Breaker, Client, RetryPolicy, Upload, api_key, check_base_url, in_clear

# WebUI settings a hosted edit endpoint has no field for, with the option that sets each.
WEBUI_ONLY = {"sampler": "--sampler", "steps": "--steps", "cfg_scale": "--cfg", "strength": "--strength",
              "resolution": "--resolution", "width": "width", "height": "height"}


class DryRun(EditAnythingError):
    """Raised instead of sending when `dry_run` is on; the message says what would have been sent."""


@dataclass
class Planned:
    """One request as it would go on the wire (files described by size, not content)."""

    method: str
    url: str
    fields: dict[str, str]
    files: dict[str, Upload]
    crop_size: tuple[int, int]
    sent_size: tuple[int, int]
    mask_encoding: str
    cost: str

    def describe(self) -> str:
        files = ", ".join(f"{name}: {u.content_type} {len(u.data) / 1024:.0f} KiB" for name, u in self.files.items())
        fields = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return (f"would {self.method} {self.url}; crop {self.crop_size[0]}x{self.crop_size[1]} sent as "
                f"{self.sent_size[0]}x{self.sent_size[1]} ({files}); mask: {self.mask_encoding}; "
                f"parameters: {fields}; cost: {self.cost}{in_clear(self.url, 'crop')}")


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of an RGB, RGBA or grey uint8 array."""
    if array.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if array.shape[2] == 4 else cv2.COLOR_RGB2BGR
        array = cv2.cvtColor(array, code)
    ok, data = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise InvalidInputError("could not encode the crop as PNG")
    return data.tobytes()


def decode_answer(data: bytes, service: str, *, size: tuple[int, int] | None = None, ratio: float | None = None,
                  then: str = "saved") -> np.ndarray:
    """An answer's image as RGB uint8 (an alpha channel is dropped), if it is `size` (when given) or of aspect
    ratio `ratio` (within 5 %: services round their sizes to a grid); else RemoteServiceError saying the
    answer was not `then` (saved, pasted).

    The size is read from the header before anything is decoded, within the pixel limit for user input, so
    an answer the size of a decompression bomb costs nothing.
    """
    width, height = answer_size(data, service)
    if size is not None and (width, height) != tuple(size):
        raise RemoteServiceError(f"{service} answered with a {width}x{height} image for a {size[0]}x{size[1]} "
                                 f"request: a bad answer, not {then}; try again")
    if ratio is not None and abs(math.log((width / height) / ratio)) > 0.05:
        raise RemoteServiceError(f"{service} answered with a {width}x{height} image, not the aspect ratio asked "
                                 f"for: a bad answer, not {then}; try again")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise RemoteServiceError(f"{service} answered with an image that cannot be decoded")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def b64decode(text: object, service: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RemoteServiceError(f"{service} answered with an image field that is not base64") from None


def answer_size(data: bytes, service: str) -> tuple[int, int]:
    """Width and height from an answer's image header, within the pixel limit for user input."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            size = Image.open(io.BytesIO(data)).size
    except Image.DecompressionBombError:
        size = None
    except Exception:  # Pillow raises many types for bytes that are not an image
        raise RemoteServiceError(f"{service} answered with bytes that are not an image") from None
    limit = max_pixels_default()
    if size is None or size[0] * size[1] > limit:
        raise RemoteServiceError(f"{service} answered with an image over the limit of {limit:,} pixels: a bad "
                                 "answer, not decoded")
    return size


@dataclass
class RemoteGenerator:
    """Base of the hosted generators; subclasses set the class attributes and `_generate`."""

    # Where requests go comes from the environment only ($STABILITY_BASE_URL, $OPENAI_BASE_URL), never from an
    # argument a recipe could fill in: the key travels to it.
    base_url: str = field(init=False, default="")
    dry_run: bool = False
    timeout: float = 120.0
    attempts: int = 4
    max_wait: float = 60.0
    backoff: float = 1.0
    allow_insecure: bool = False
    mode: str = "replace"

    name = "remote"
    service = "a remote service"
    key_variable = ""
    base_variable = ""
    default_base = ""
    honours_seed = False
    works_at_any_size = True  # the crop goes out at its own size; the backend fits it to the endpoint

    def __post_init__(self) -> None:
        self.base_url = (os.environ.get(self.base_variable) or self.default_base).rstrip("/")
        check_base_url(self.base_url, self.base_variable, self.service, self.allow_insecure)
        self.policy = RetryPolicy(self.attempts, self.backoff, self.max_wait, self.timeout)
        self.breaker = Breaker()  # one per generator: every photo it sends counts
        # Read once, up front: a missing key stops a batch before the first photo, naming the variable.
        self._key = None if self.dry_run else api_key(self.key_variable, self.service)

    def __repr__(self) -> str:  # the dataclass repr would list fields only, but keep the key out for sure
        return f"{type(self).__name__}(base_url={self.base_url!r}, mode={self.mode!r}, dry_run={self.dry_run})"

    def client(self) -> Client:
        return Client(self.service, self._key or "", self.error_for, self.policy, breaker=self.breaker)

    def describe(self) -> str:
        host = self.base_url.split("://", 1)[-1].split("/", 1)[0]
        return f"{self.name} ({self.service}, remote: the crop around the mask is uploaded to {host})"

    def for_edit(self, request: Any) -> "RemoteGenerator":
        """A copy bound to one edit: its mode and selection, with the request's settings checked."""
        bound = copy.copy(self)
        bound.mode = request.mode
        bound.bind(request)
        return bound

    def bind(self, request: Any) -> None:
        """Check the request's settings against the endpoint (subclasses add their own)."""
        self.reject_webui_only(request.params)

    def reject_webui_only(self, params: GenerationParams, also: dict[str, str] | None = None) -> None:
        # unset (None) or the WebUI's default value both mean the user did not ask for a setting
        defaults = {**GenerationParams().to_dict(), **WEBUI_DEFAULTS}
        unsupported = {**WEBUI_ONLY, **(also or {})}
        given = [n for n in unsupported if getattr(params, n) not in (None, defaults[n])]
        if given:
            raise InvalidInputError(
                f"{self.service}'s {self.endpoint_name()} endpoint has no {', '.join(given)}: leave out "
                f"{', '.join(unsupported[n] for n in given)} (it takes {self.accepted()})")

    def endpoint_name(self) -> str:
        raise NotImplementedError

    def accepted(self) -> str:
        raise NotImplementedError

    def error_for(self, response) -> EditAnythingError:
        raise NotImplementedError

    def inpaint(self, image: np.ndarray, mask: np.ndarray, params: GenerationParams) -> Generated:
        image = check_rgb(image)
        mask = check_mask(mask, image.shape)
        params = params.with_seed()
        seeds = params.image_seeds() if self.honours_seed else []
        requests: list[dict[str, Any]] = []
        images = changed(image, self._generate(image, mask, params, seeds, requests), self.name)
        return Generated(images, seeds, model={**self.model_info(), "requests": requests})

    def _generate(self, image: np.ndarray, mask: np.ndarray, params: GenerationParams, seeds: list[int],
                  requests: list[dict[str, Any]]) -> list[np.ndarray]:
        """`params.n_images` images (one per seed where the service takes seeds), each request in `requests`."""
        raise NotImplementedError

    def send(self, planned: Planned, max_bytes: int, accept: str = "application/json"):
        if self.dry_run:
            raise DryRun(planned.describe())
        return self.client().request(planned.method, planned.url, fields=planned.fields, files=planned.files,
                                     accept=accept, max_bytes=max_bytes)

    def record(self, requests: list[dict[str, Any]], planned: Planned, response, **extra: Any) -> None:
        """What the recipe keeps of one request: every field sent, the files' sizes and the service's id."""
        requests.append({
            "endpoint": planned.url[len(self.base_url):], "fields": dict(planned.fields),
            "crop_size": list(planned.crop_size), "sent_size": list(planned.sent_size),
            "request_id": response.request_id, **extra,
        })

    def options(self) -> dict[str, Any]:
        """Constructor settings that `replay` needs to rebuild this backend."""
        return {}

    def model_info(self) -> dict[str, Any]:
        return {"name": self.name, "remote": True, "service": self.service, "endpoint": self.endpoint_name(),
                "honours_seed": self.honours_seed, "options": self.options()}

    def release(self) -> None:
        """Nothing to free: the model runs at the service."""
