"""Hosted text to image (and image to image): what Stability AI's and OpenAI's generation endpoints share.

`editanything generate --generator stability|openai` runs here instead of the local diffusers loop.
Everything the hosted edits guarantee holds: the key comes from the environment and goes only to
the base URL (http.py), answers are read with a byte cap and checked before decoding (base.py), 429
and 5xx are retried within bounded waits, and `dry_run` prints the request and its cost instead of
sending. A call returns what it sent (every field, the service's request id) with its images, for
the recipe; nothing is kept on the generator.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import InvalidInputError, RemoteServiceError
from ..generated import Generated
from .base import DryRun
from .http import Client, Upload, in_clear

ANSWER_MAX_SIDE = 4096  # no generation endpoint answers larger; the cap on reading an answer follows from it


@dataclass
class PlannedGeneration:
    """One generation request as it would go on the wire: form fields (multipart) or a JSON body."""

    url: str
    fields: dict[str, Any]
    cost: str
    files: dict[str, Upload] = field(default_factory=dict)
    as_json: bool = False

    def describe(self) -> str:
        sent = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        files = "".join(f"; {name}: {u.content_type} {len(u.data) / 1024:.0f} KiB" for name, u in self.files.items())
        body = "JSON" if self.as_json else "multipart form"
        return f"would POST {self.url} ({body}): {sent}{files}; cost: {self.cost}{in_clear(self.url, 'prompt')}"


class TextToImage:
    """The `txt2img` / `img2img` side of a RemoteGenerator (mixed into StabilityGenerator and OpenAIGenerator).

    Subclasses give `check_mode(mode)`, `check_generation(params)`, `generation_endpoint(mode)`,
    `generation_error(response, label)` and `_generate_images(params, size, image, seeds, requests)`, which
    returns the RGB images (one per seed; `None` seeds where the service takes none).
    """

    native_size = 1024  # every hosted model makes 1024-px images by default
    size_multiple = 8

    def txt2img(self, params: Any, width: int, height: int) -> Generated:
        return self._run("txt2img", params, (width, height), None)

    def img2img(self, image: np.ndarray, params: Any) -> Generated:
        return self._run("img2img", params, (image.shape[1], image.shape[0]), image)

    def _run(self, mode: str, params: Any, size: tuple[int, int], image: np.ndarray | None) -> Generated:
        self.check_mode(mode)
        self.check_generation(params, mode)
        params = params.with_seed()
        seeds = params.image_seeds() if self.honours_seed else []
        requests: list[dict[str, Any]] = []
        images = self._generate_images(params, size, image, seeds or [None] * params.n_images, requests)
        info = self.model_info()
        model = {**info, "endpoint": self.generation_endpoint(mode),
                 "options": {**info["options"], **self.generation_options()}, "requests": requests}
        return Generated(images, seeds, model=model)

    def describe_generation(self, mode: str) -> str:
        host = urllib.parse.urlsplit(self.base_url).netloc
        what = "the prompt and the picture go" if mode == "img2img" else "the prompt goes"
        return f"{self.name} {self.generation_endpoint(mode)} ({self.service}, remote: {what} to {host})"

    def check_mode(self, mode: str) -> None:
        raise NotImplementedError

    def check_generation(self, params: Any, mode: str) -> None:
        """Refuse, before anything is sent, the settings this endpoint has no field for."""
        raise NotImplementedError

    def generation_error(self, response: Any, label: str) -> RemoteServiceError:
        raise NotImplementedError

    def client_for(self, label: str) -> Client:
        """A client whose error lines start with `label` (the service and endpoint)."""
        return Client(self.service, self._key or "", lambda response: self.generation_error(response, label),
                      self.policy, breaker=self.breaker)

    def generation_endpoint(self, mode: str) -> str:
        raise NotImplementedError

    def generation_options(self) -> dict[str, Any]:
        return {}

    def send_generation(self, planned: PlannedGeneration, client: Client, max_bytes: int):
        if self.dry_run:
            raise DryRun(planned.describe())
        if planned.as_json:
            return client.request("POST", planned.url, json_body=planned.fields, max_bytes=max_bytes)
        return client.request("POST", planned.url, fields={k: str(v) for k, v in planned.fields.items()},
                              files=planned.files, max_bytes=max_bytes)

    def record_generation(self, requests: list[dict[str, Any]], planned: PlannedGeneration, response,
                          **extra: Any) -> None:
        """What the recipe keeps of one request: every field sent, the files' sizes, the service's id."""
        requests.append({"endpoint": planned.url[len(self.base_url):], "fields": json.loads(json.dumps(planned.fields)),
                         "files": {n: len(u.data) for n, u in planned.files.items()},
                         "request_id": response.request_id, **extra})


def answer_bytes(images: int = 1) -> int:
    """The cap on an answer holding `images` generated images (PNG, base64 in JSON)."""
    from .http import answer_cap

    return answer_cap(ANSWER_MAX_SIDE, ANSWER_MAX_SIDE // 2, images=images)


def check_ratio(width: int, height: int, ratios: tuple[str, ...], service: str) -> str:
    """The aspect ratio (e.g. "16:9") nearest width x height, if within 5 %; else a one-line error listing them."""
    def distance(ratio: str) -> float:
        a, b = (int(x) for x in ratio.split(":"))
        return abs(math.log((width / height) / (a / b)))

    nearest = min(ratios, key=distance)
    if distance(nearest) > 0.05:
        raise InvalidInputError(f"{service} makes images in the aspect ratios {', '.join(ratios)} and picks the "
                                f"pixel size itself; {width}x{height} is none of them (e.g. --width 1344 --height "
                                "768 for 16:9)")
    return nearest


# WebUI settings no hosted generation endpoint has a field for, with the option that sets each.
LOCAL_ONLY = {"sampler": "--sampler", "steps": "--steps", "cfg_scale": "--cfg"}


def reject_local_settings(params: Any, label: str, takes: str) -> None:
    """One line naming the WebUI settings given (other than unset or the WebUI's default) that `label` has no
    field for."""
    from ..params import WEBUI_DEFAULTS

    given = [n for n in LOCAL_ONLY if getattr(params, n) not in (None, WEBUI_DEFAULTS[n])]
    if given:
        raise InvalidInputError(f"{label} has no {', '.join(given)}: leave out "
                                f"{', '.join(LOCAL_ONLY[n] for n in given)} (it takes {takes})")
