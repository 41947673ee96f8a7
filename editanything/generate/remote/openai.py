"""OpenAI's image edits endpoint as a generator: `--generator openai`.

POST {base}/images/edits with the crop, a mask and the prompt, for the image models that accept a
mask. The key comes from OPENAI_API_KEY; OPENAI_BASE_URL (as in OpenAI's own clients, ending in /v1)
points the backend elsewhere (tests use a local server). OpenAI takes no seed: replays differ.

Where each fact comes from (openai/openai-python, src/openai/types/image_edit_params.py, generated from
OpenAI's OpenAPI spec; stored copy at commit 01a7709e):
- Models that edit with a mask: `dall-e-2` and the GPT image models `gpt-image-1`, `gpt-image-1-mini`,
  `gpt-image-1.5`, `gpt-image-2`, `chatgpt-image-latest` (the API's default is `gpt-image-1.5`).
- The mask: "an additional image whose fully transparent areas (alpha is zero) indicate where image
  should be edited"; a PNG under 4 MB with the image's dimensions.
- The image: for the GPT image models png, webp or jpg under 50 MB; for dall-e-2 one square PNG under 4 MB.
- Sizes: 1024x1024, 1536x1024, 1024x1536 for the GPT image models; 256x256, 512x512, 1024x1024 for
  dall-e-2. `n` 1..10. Prompts up to 1000 characters (dall-e-2) or 32000 (GPT image models).
- Answers: GPT image models always return base64 (`data[].b64_json`); dall-e-2 does with
  `response_format=b64_json`. `output_format` (png) exists for the GPT image models only.
- Errors: `{"error": {"message", "type", "param", "code"}}` (openai-python's APIError); a refused prompt
  has code `moderation_blocked` (GPT image models) or `content_policy_violation` (dall-e-2); an empty
  account `insufficient_quota`; the request id is the `x-request-id` header (openai-python's README).
  dall-e-2 wants the image itself with an alpha channel ("format must be in ['RGBA', 'LA', 'L']"), so
  the crop is sent as an opaque RGBA PNG.
- Price: OpenAI bills per image (dall-e-2) or per token (GPT image models); it publishes no credits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InvalidInputError, RemoteServiceError
from ...types import GenerationParams
from .base import Planned, RemoteGenerator, b64decode, decode_answer, encode_png
from .http import ContentRefused, QuotaExceeded, Response, Upload, answer_cap
from .images import PlannedGeneration, TextToImage, answer_bytes, reject_local_settings
from .sizing import Fitted, closest_size, fit_exact

MASK_MODELS = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2", "chatgpt-image-latest", "dall-e-2")
GPT_SIZES = [(1024, 1024), (1536, 1024), (1024, 1536)]
DALLE2_SIDES = (256, 512, 1024)
MAX_N = 10
# Generation (`editanything generate --generator openai`): POST {base}/images/generations, a JSON body
# (openai-python's image_generate_params.py: prompt, model, n 1..10, size, output_format; the GPT image
# models always answer base64 in data[].b64_json). dall-e-2 is left to edits.
GENERATE_MODELS = tuple(m for m in MASK_MODELS if m != "dall-e-2")
KEYLIKE = re.compile(r"sk-[A-Za-z0-9*_\-]+")


@dataclass(repr=False)
class OpenAIGenerator(TextToImage, RemoteGenerator):
    """OpenAI image edits with `model` (one of MASK_MODELS)."""

    model: str = "gpt-image-1"

    name = "openai"
    service = "OpenAI"
    key_variable = "OPENAI_API_KEY"
    base_variable = "OPENAI_BASE_URL"
    default_base = "https://api.openai.com/v1"
    honours_seed = False

    def __post_init__(self) -> None:
        if self.model not in MASK_MODELS:
            raise InvalidInputError(f"OpenAI model {self.model!r} cannot edit with a mask; use one of: "
                                    f"{', '.join(MASK_MODELS)}")
        super().__post_init__()

    def endpoint_name(self) -> str:
        return "images/edits"

    def accepted(self) -> str:
        return "a prompt and a mask; no seed and no negative prompt"

    def bind(self, request: Any) -> None:
        self.reject_webui_only(request.params, {"negative_prompt": "--negative"})
        limit = 1000 if self.model == "dall-e-2" else 32000
        if len(request.params.prompt) > limit:
            raise InvalidInputError(f"OpenAI {self.model} takes prompts up to {limit} characters; "
                                    f"this one has {len(request.params.prompt)}")

    def options(self) -> dict[str, Any]:
        return {"model": self.model}

    def model_info(self) -> dict[str, Any]:
        return {**super().model_info(), "model": self.model}

    def _generate(self, image: np.ndarray, mask: np.ndarray, params: GenerationParams, seeds: list[int],
                  requests: list[dict[str, Any]]) -> list[np.ndarray]:
        fitted, files = self._uploads(image, mask)
        out: list[np.ndarray] = []
        total = params.n_images
        while len(out) < total:
            n = min(MAX_N, total - len(out))
            fields = {"model": self.model, "prompt": params.prompt, "n": str(n),
                      "size": f"{fitted.size[0]}x{fitted.size[1]}"}
            fields.update({"response_format": "b64_json"} if self.model == "dall-e-2" else {"output_format": "png"})
            planned = Planned("POST", f"{self.base_url}/images/edits", fields, files, fitted.crop_size, fitted.size,
                              "RGBA PNG, alpha 0 = edit, 255 = keep",
                              "not published in credits (OpenAI bills per image or per token)")
            response = self.send(planned, answer_cap(*fitted.size, images=n))
            data = (response.json() or {}).get("data") or []
            images = [d.get("b64_json") for d in data if isinstance(d, dict) and d.get("b64_json")]
            if len(images) != n:
                raise RemoteServiceError(f"OpenAI images/edits: asked for {n} images, the answer holds {len(images)}")
            answers = [decode_answer(b64decode(b, self.service), self.service, size=fitted.size, then="pasted")
                       for b in images]
            self.record(requests, planned, response, model=self.model, answer_size=list(fitted.size))
            out += [fitted.undo(answer) for answer in answers]
        return out

    def _uploads(self, image: np.ndarray, mask: np.ndarray) -> tuple[Fitted, dict[str, Upload]]:
        """The crop padded and resized to a size the model takes, with the mask as alpha.

        The upload limits (4 MB for dall-e-2's image and every mask, 50 MB otherwise) cannot be reached
        at these sizes: an RGBA PNG of 1024x1024 holds at most 3 MB of colour, a mask's colour is black.
        """
        crop = (mask.shape[1], mask.shape[0])
        if self.model == "dall-e-2":
            side = next((s for s in DALLE2_SIDES if s >= max(crop)), DALLE2_SIDES[-1])
            size = (side, side)
        else:
            size = closest_size(crop, GPT_SIZES)
        fitted = fit_exact(image, mask, size)
        opaque = np.dstack([fitted.image, np.full(fitted.mask.shape, 255, np.uint8)])
        alpha = np.where(fitted.mask, 0, 255).astype(np.uint8)
        files = {"image": Upload("image.png", encode_png(opaque)),
                 "mask": Upload("mask.png", encode_png(np.dstack([np.zeros((*alpha.shape, 3), np.uint8), alpha])))}
        return fitted, files

    def error_for(self, response: Response) -> RemoteServiceError:
        return error_from(response, f"OpenAI images/edits ({self.model})", self.key_variable)

    # -- generate: text to image -------------------------------------------------------------------------------
    def generation_endpoint(self, mode: str) -> str:
        return "images/generations"

    def generation_error(self, response: Response, label: str) -> RemoteServiceError:
        return error_from(response, label, self.key_variable)

    def check_mode(self, mode: str) -> None:
        if mode == "img2img":
            raise InvalidInputError("OpenAI's images/generations endpoint makes images from text only; to redraw a "
                                    "picture with OpenAI use `editanything edit --generator openai`, or generate "
                                    "with --generator stability --remote-model ultra or sd3")

    def check_generation(self, params: GenerationParams, mode: str) -> None:
        if self.model not in GENERATE_MODELS:
            raise InvalidInputError(f"generate with OpenAI takes the GPT image models: {', '.join(GENERATE_MODELS)} "
                                    f"(not {self.model})")
        reject_local_settings(params, "OpenAI's images/generations endpoint", "a prompt and a size; no seed and no "
                              "negative prompt")
        if params.negative_prompt:
            raise InvalidInputError("OpenAI's images/generations endpoint takes no negative prompt: leave out "
                                    "--negative (say what to avoid in the prompt)")
        if len(params.prompt) > 32000:
            raise InvalidInputError(f"OpenAI {self.model} takes prompts up to 32000 characters; this one has "
                                    f"{len(params.prompt)}")
        if params.width is not None and (params.width, params.height) not in GPT_SIZES:
            raise InvalidInputError(f"OpenAI {self.model} makes images of "
                                    f"{', '.join(f'{w}x{h}' for w, h in GPT_SIZES)}; "
                                    f"got {params.width}x{params.height}")

    def _generate_images(self, params: GenerationParams, size: tuple[int, int], image: np.ndarray | None,
                         seeds: list, requests: list[dict[str, Any]]) -> list[np.ndarray]:
        label = f"OpenAI images/generations ({self.model})"
        client, out, total = self.client_for(label), [], len(seeds)
        while len(out) < total:
            n = min(MAX_N, total - len(out))
            fields = {"model": self.model, "prompt": params.prompt, "n": n, "size": f"{size[0]}x{size[1]}",
                      "output_format": "png"}
            planned = PlannedGeneration(f"{self.base_url}/images/generations", fields,
                                        "not published in credits (OpenAI bills the GPT image models per token)",
                                        as_json=True)
            response = self.send_generation(planned, client, answer_bytes(n))
            data = (response.json() or {}).get("data") or []
            images = [d.get("b64_json") for d in data if isinstance(d, dict) and d.get("b64_json")]
            if len(images) != n:
                raise RemoteServiceError(f"{label}: asked for {n} images, the answer holds {len(images)}")
            out += [decode_answer(b64decode(b, self.service), self.service, size=size) for b in images]
            self.record_generation(requests, planned, response, answer_size=list(size))
        return out


def error_from(response: Response, label: str, key_variable: str = "OPENAI_API_KEY") -> RemoteServiceError:
    """One line for an OpenAI error answer (`{"error": {"message", "type", "code"}}`), as the error type
    that says what to do: a refusal, an empty account, a bad key, or anything else."""
    body = response.json()
    error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    code, kind = error.get("code") or "", error.get("type") or ""
    message = error.get("message") or response.body[:200].decode("utf-8", "replace")
    tag = code or kind
    text = " ".join(f"{label}: HTTP {response.status}{' ' + tag if tag else ''}: "
                    f"{KEYLIKE.sub('sk-***', str(message))}".split())
    if response.request_id:
        text += f" (request id {response.request_id})"
    if code in ("moderation_blocked", "content_policy_violation", "content_filter"):
        return ContentRefused(f"{text}; the safety system refused it: change the prompt or the selection")
    if "insufficient_quota" in (code, kind) or code == "billing_hard_limit_reached":
        return QuotaExceeded(f"{text}; add credit to the account")
    if response.status == 401:
        return RemoteServiceError(f"{text}; check the key in {key_variable}")
    return RemoteServiceError(text)
