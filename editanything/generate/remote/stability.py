"""Stability AI's Stable Image edit endpoints (v2beta) as a generator: `--generator stability`.

replace → inpaint (prompt + mask); remove → erase (mask); replace with `search_and_replace` →
search-and-replace (prompt + the selection's text, no mask: the service finds the object in the crop);
background → replace-background-and-relight (the crop holding the subject + a background prompt).
The key comes from STABILITY_API_KEY; STABILITY_BASE_URL points the backend elsewhere (tests use a
local server).

Where each fact comes from (stored public copies, read 2026-11-30):
- POST {base}/v2beta/stable-image/edit/{route}, multipart/form-data, `authorization: Bearer KEY`,
  `accept: image/*` (raw bytes) or `application/json` (base64 in JSON); seed 0..4294967294, 0 = random;
  output_format jpeg|png|webp: the platform.stability.ai reference as copied in gambithunt/imagen
  (.github/instructions/sd_core.instructions.md) and the inpaint page mirrored at apifox (api-205930781).
- The fields of each route, grow_mask bounds (inpaint 0-100; erase and search-and-replace 0-20), the
  mask (black = keep, white = edit), input limits (every side >= 64 px, 4,096..9,437,184 pixels, aspect
  ratio 1:2.5..2.5:1) and prices (erase, inpaint, search-and-replace: 5 credits; 1 credit = $0.01): the
  transcription of Stability's machine-readable spec (api.stability.ai/v2alpha/openapi, 2026-08-13) in
  the public `unmodel` package's Stability edit module.
- The JSON answer {image: base64, finish_reason: SUCCESS | CONTENT_FILTERED, seed}: api-evangelist/
  stability-ai json-schema/stability-ai-editimageresponse-schema.json. Error bodies {id, name, errors[]}:
  the openapi-typescript rendering of Stability's spec (glama.ai, src/stabilityAi/types.ts).
- replace-background-and-relight takes `subject_image` (required), `background_prompt`,
  `negative_prompt`, `seed`, `output_format`; it is asynchronous: the POST answers {id}, and
  GET {base}/v2beta/results/{id} answers 202 while it runs, then the image (mindcloud's action
  reference; a public client that polls it). Its price, 8 credits, is inferred: resellers list it at the
  price of Stable Image Ultra (8 credits); Stability's own price page was not in the stored copies.
- Not seen in a stored copy: the exact error names (403 content moderation, 413 body over 10 MiB).
  The code keys on status codes and quotes the body's `name` and `errors`. Whether a success carries an
  `x-request-id` header was not confirmed either: the recipe keeps it when present, else the
  asynchronous generation id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InvalidInputError, RemoteServiceError
from ...types import GenerationParams
from .base import Planned, RemoteGenerator, b64decode, decode_answer, encode_png
from .http import ContentRefused, QuotaExceeded, Response, Upload, answer_cap
from .images import PlannedGeneration, TextToImage, answer_bytes, check_ratio, reject_local_settings
from .sizing import Fitted, fit_limits

EDIT = "/v2beta/stable-image/edit/"
ROUTES = {"replace": "inpaint", "remove": "erase", "search": "search-and-replace",
          "background": "replace-background-and-relight"}
CREDITS = {"inpaint": 5, "erase": 5, "search-and-replace": 5, "replace-background-and-relight": 8}
GROW_MASK_MAX = {"inpaint": 100, "erase": 20, "search-and-replace": 20}
MASK_ENCODING = {"inpaint": "grayscale PNG, white = edit", "erase": "grayscale PNG, white = edit",
                 "search-and-replace": "none (the service finds the object by search_prompt)",
                 "replace-background-and-relight": "none (the service separates the subject itself)"}
MAX_SEED = 4294967294
MIN_SIDE, MIN_PIXELS, MAX_PIXELS, MAX_RATIO = 64, 4096, 9_437_184, 2.5
MAX_BODY = 10 * 1024 * 1024  # the request limit (HTTP 413 above it)
# Generation (`editanything generate --generator stability --remote-model NAME`): NAME → (route under
# GENERATE, the sd3 route's `model` field, credits per image).
GENERATE = "/v2beta/stable-image/generate/"
GENERATE_MODELS = {"core": ("core", None, 3), "ultra": ("ultra", None, 8), "sd3": ("sd3", "sd3.5-large", 6.5),
                   "sd3.5-large": ("sd3", "sd3.5-large", 6.5), "sd3.5-large-turbo": ("sd3", "sd3.5-large-turbo", 4),
                   "sd3.5-medium": ("sd3", "sd3.5-medium", 3.5)}
ASPECT_RATIOS = ("1:1", "16:9", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")


@dataclass(repr=False)
class StabilityGenerator(TextToImage, RemoteGenerator):
    """Stability AI's edit endpoints. `search_and_replace`: replace by the selection's text in one call.
    `model`: what `generate` uses (a key of GENERATE_MODELS: core, ultra, sd3, sd3.5-large, -large-turbo, -medium)."""

    search_and_replace: bool = False
    search_prompt: str | None = None
    grow_mask: int = 5
    poll_every: float = 2.0
    model: str = "core"

    name = "stability"
    service = "Stability AI"
    key_variable = "STABILITY_API_KEY"
    base_variable = "STABILITY_BASE_URL"
    default_base = "https://api.stability.ai"
    honours_seed = True

    def __post_init__(self) -> None:
        if not isinstance(self.grow_mask, int) or not 0 <= self.grow_mask <= 20:
            raise InvalidInputError(f"Stability grow_mask must be an int in 0..20 pixels; got {self.grow_mask!r}")
        if self.model not in GENERATE_MODELS:
            raise InvalidInputError(f"Stability AI has no generation model {self.model!r}; --remote-model takes "
                                    f"{', '.join(GENERATE_MODELS)}")
        super().__post_init__()

    def route(self) -> str:
        if self.mode == "replace" and self.search_and_replace:
            return ROUTES["search"]
        if self.mode not in ROUTES:
            raise InvalidInputError(f"Stability AI has no endpoint for {self.mode}; use a local generator")
        return ROUTES[self.mode]

    def endpoint_name(self) -> str:
        return self.route()

    def accepted(self) -> str:
        return {"erase": "a mask and a seed", "replace-background-and-relight": "a background prompt, a negative "
                "prompt and a seed"}.get(self.route(), "a prompt, a negative prompt and a seed")

    def bind(self, request: Any) -> None:
        if self.search_and_replace and request.mode != "replace":
            raise InvalidInputError(f"--search-and-replace replaces what --select names; it does not combine "
                                    f"with {request.mode}")
        if self.search_and_replace:
            self.search_prompt = request.selection.text or self.search_prompt
            if not self.search_prompt:
                raise InvalidInputError("--search-and-replace needs --select TEXT: the service looks for what it says")
        route = self.route()
        also = {"negative_prompt": "--negative"} if route == "erase" else {}
        if route == "erase" and request.params.prompt:
            raise InvalidInputError("Stability AI's erase endpoint takes no prompt: leave out --prompt with --remove")
        self.reject_webui_only(request.params, also)

    @property
    def takes_prompt(self) -> bool:
        return self.route() != "erase"

    def options(self) -> dict[str, Any]:
        return {"search_and_replace": self.search_and_replace, "search_prompt": self.search_prompt,
                "grow_mask": self.grow_mask}

    def _generate(self, image: np.ndarray, mask: np.ndarray, params: GenerationParams, seeds: list[int],
                  requests: list[dict[str, Any]]) -> list[np.ndarray]:
        route = self.route()
        fitted, files = self._uploads(image, mask, route)
        out = []
        for seed in seeds:
            fields = self._fields(route, params, min(seed, MAX_SEED))
            n = len(seeds)
            cost = f"{CREDITS[route]} credits per image x {n} = {CREDITS[route] * n} credits (1 credit = $0.01)"
            planned = Planned("POST", self.base_url + EDIT + route, fields, files, fitted.crop_size, fitted.size,
                              MASK_ENCODING[route], cost)
            cap = answer_cap(*fitted.size)
            response = self.send(planned, cap)
            if route == "replace-background-and-relight":
                response, generation_id = self._await_result(response, cap)
            else:
                generation_id = None
            body = response.json() or {}
            if body.get("finish_reason") == "CONTENT_FILTERED":
                raise ContentRefused(f"Stability AI {route}: the content filter blurred the answer "
                                     f"(finish_reason CONTENT_FILTERED); change the prompt or the selection")
            if not body.get("image"):
                raise RemoteServiceError(f"Stability AI {route}: the answer holds no image")
            answer = decode_answer(b64decode(body["image"], self.service), self.service, size=fitted.size,
                                   then="pasted")
            self.record(requests, planned, response, seed_sent=int(fields["seed"]), seed_used=body.get("seed"),
                        finish_reason=body.get("finish_reason"), generation_id=generation_id,
                        request_id=response.request_id or generation_id, answer_size=list(fitted.size))
            out.append(fitted.undo(answer))
        return out

    def _fields(self, route: str, params: GenerationParams, seed: int) -> dict[str, str]:
        fields: dict[str, str] = {}
        if route in ("inpaint", "search-and-replace"):
            fields["prompt"] = params.prompt
        if route == "search-and-replace":
            fields["search_prompt"] = self.search_prompt or ""
        if route == "replace-background-and-relight":
            fields["background_prompt"] = params.prompt
        if route != "erase" and params.negative_prompt:
            fields["negative_prompt"] = params.negative_prompt
        if route in GROW_MASK_MAX:
            fields["grow_mask"] = str(min(self.grow_mask, GROW_MASK_MAX[route]))
        fields["seed"] = str(seed)
        fields["output_format"] = "png"  # lossless: the answer is pasted pixel for pixel
        return fields

    def _uploads(self, image: np.ndarray, mask: np.ndarray, route: str) -> tuple[Fitted, dict[str, Upload]]:
        """The crop (and mask) within the pixel limits, shrunk further until the body fits in 10 MiB."""
        scale = 1.0
        while True:
            fitted = fit_limits(image, mask, min_side=MIN_SIDE, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS,
                                max_ratio=MAX_RATIO, scale=scale)
            if route == "replace-background-and-relight":
                files = {"subject_image": Upload("subject.png", encode_png(fitted.image))}
            else:
                files = {"image": Upload("image.png", encode_png(fitted.image))}
                if route != "search-and-replace":
                    files["mask"] = Upload("mask.png", encode_png(fitted.mask.astype(np.uint8) * 255))
            if sum(len(u.data) for u in files.values()) < MAX_BODY - 64 * 1024 or min(fitted.size) <= MIN_SIDE:
                return fitted, files
            scale = min(scale, fitted.size[0] / fitted.crop_size[0]) * 0.75

    def _await_result(self, started: Response, cap: int) -> tuple[Response, str]:
        """Poll GET /v2beta/results/{id} until the asynchronous generation is done (at most `timeout` s)."""
        generation_id = (started.json() or {}).get("id")
        if not generation_id:
            raise RemoteServiceError("Stability AI replace-background-and-relight: the answer holds no generation id")
        client, waited = self.client(), 0.0
        while True:
            response = client.request("GET", f"{self.base_url}/v2beta/results/{generation_id}", max_bytes=cap)
            if response.status != 202:
                return response, generation_id
            if waited >= self.timeout:
                raise RemoteServiceError(f"Stability AI replace-background-and-relight: generation {generation_id} "
                                         f"still running after {self.timeout:g} s")
            client.sleep(self.poll_every)
            waited += self.poll_every

    def error_for(self, response: Response) -> RemoteServiceError:
        return error_from(response, f"Stability AI {self.route()}", self.key_variable)

    # -- generate: text to image (core, ultra, sd3) and image to image (ultra, sd3) -----------------------------
    def generation_endpoint(self, mode: str) -> str:
        return "generate/" + GENERATE_MODELS[self.model][0]

    def generation_options(self) -> dict[str, Any]:
        return {"model": self.model}

    def check_mode(self, mode: str) -> None:
        if mode == "img2img" and self.model == "core":
            raise InvalidInputError("Stability AI's Stable Image Core makes images from text only; to redraw --image "
                                    "pick --remote-model ultra or sd3 (sd3.5-large, sd3.5-large-turbo, sd3.5-medium)")

    def generation_error(self, response: Response, label: str) -> RemoteServiceError:
        return error_from(response, label, self.key_variable)

    def check_generation(self, params: GenerationParams, mode: str) -> None:
        label = f"Stability AI's {self.generation_endpoint(mode)} endpoint"
        reject_local_settings(params, label, "a prompt, a negative prompt, a seed and an aspect ratio")
        if params.width is not None and mode == "txt2img":
            check_ratio(params.width, params.height, ASPECT_RATIOS, "Stability AI")

    def _generate_images(self, params: GenerationParams, size: tuple[int, int], image: np.ndarray | None,
                         seeds: list[int], requests: list[dict[str, Any]]) -> list[np.ndarray]:
        route, model, credits = GENERATE_MODELS[self.model]
        files = {}
        if image is not None:
            if not 1 / MAX_RATIO <= size[0] / size[1] <= MAX_RATIO or min(size) < MIN_SIDE:
                raise InvalidInputError(f"Stability AI takes pictures with sides of {MIN_SIDE} px or more and an "
                                        f"aspect ratio between 1:{MAX_RATIO} and {MAX_RATIO}:1; this one is "
                                        f"{size[0]}x{size[1]}: crop it first")
            files = {"image": Upload("image.png", encode_png(image))}
        ratio = None if image is not None else check_ratio(*size, ASPECT_RATIOS, "Stability AI")
        cost = f"{credits:g} credits per image x {len(seeds)} = {credits * len(seeds):g} credits (1 credit = $0.01)"
        client, out = self.client_for(f"Stability AI generate/{route}"), []
        for seed in seeds:
            fields: dict[str, Any] = {"prompt": params.prompt}
            if model:
                fields["model"] = model
                fields["mode"] = "image-to-image" if image is not None else "text-to-image"
            if params.negative_prompt:
                fields["negative_prompt"] = params.negative_prompt
            if ratio:
                fields["aspect_ratio"] = ratio
            else:
                fields["strength"] = params.strength
            fields["seed"] = min(seed, MAX_SEED)
            fields["output_format"] = "png"  # lossless: what the service made is what is saved
            planned = PlannedGeneration(self.base_url + GENERATE + route, fields, cost, files)
            response = self.send_generation(planned, client, answer_bytes())
            body = response.json() or {}
            if body.get("finish_reason") == "CONTENT_FILTERED":
                raise ContentRefused(f"Stability AI generate/{route}: the content filter blurred the answer "
                                     "(finish_reason CONTENT_FILTERED); change the prompt")
            if not body.get("image"):
                raise RemoteServiceError(f"Stability AI generate/{route}: the answer holds no image")
            a, b = (int(x) for x in (ratio or f"{size[0]}:{size[1]}").split(":"))
            answer = decode_answer(b64decode(body["image"], self.service), self.service, ratio=a / b)
            self.record_generation(requests, planned, response, seed_sent=fields["seed"], seed_used=body.get("seed"),
                                   finish_reason=body.get("finish_reason"),
                                   answer_size=[answer.shape[1], answer.shape[0]])
            out.append(answer)
        return out


def error_from(response: Response, label: str, key_variable: str = "STABILITY_API_KEY") -> RemoteServiceError:
    """One line for a Stability error answer (`{"id", "name", "errors": [...]}`), as the error type that says
    what to do: a refusal, an empty account, a bad key, or anything else."""
    body = response.json() if isinstance(response.json(), dict) else {}
    name = body.get("name") or ""
    errors = body.get("errors") or [body.get("message")]
    detail = "; ".join(str(e) for e in errors if e) or response.body[:200].decode("utf-8", "replace")
    where = f"{label}: HTTP {response.status}{' ' + name if name else ''}"
    text = " ".join(f"{where}: {detail}".split()) + (f" (error id {body['id']})" if body.get("id") else "")
    if response.status == 403 or name == "content_moderation":
        return ContentRefused(f"{text}; the content filter refused it: change the prompt or the selection")
    if response.status == 402:
        return QuotaExceeded(f"{text}; add credits to the account")
    if response.status == 401:
        return RemoteServiceError(f"{text}; check the key in {key_variable}")
    return RemoteServiceError(text)
