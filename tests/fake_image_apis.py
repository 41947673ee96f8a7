"""A local stand-in for Stability AI's v2beta edit and generate endpoints and OpenAI's /v1/images/edits and
/v1/images/generations, on 127.0.0.1.

It checks requests the way the public references describe them (see editanything/generate/remote/
stability.py and openai.py for the sources): Bearer key, multipart fields and files, the mask encoding
of each endpoint, size limits, and answers in the documented formats (JSON with base64 images, error
bodies, x-request-id, Retry-After). Its "model" paints the edited area a colour derived from the prompt
and seed, and nudges every other pixel by one level, as a VAE round trip would, so that a client that
pasted the whole answer back would be caught. Its generation endpoints paint a picture from the prompt and
seed at about a megapixel in the aspect ratio asked for (Stability) or at the size asked for (OpenAI).

`server.script` holds canned answers (status, headers, JSON body) served first, one per request;
`server.delay` makes every answer late (timeouts); `server.drip` sends each byte of an answer that
many seconds apart; `server.log` keeps every request it saw.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
import time
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

STABILITY_ROUTES = ("inpaint", "erase", "search-and-replace", "replace-background-and-relight")
STABILITY_GENERATE = ("core", "ultra", "sd3")
ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
SD3_MODELS = ("sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash")
GPT_SIZES = {"1024x1024", "1536x1024", "1024x1536", "auto"}
GPT_MODELS = {"gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2", "chatgpt-image-latest"}
MB = 1024 * 1024


def colour_for(text: str, seed: int) -> np.ndarray:
    digest = hashlib.sha256(f"{text}|{seed}".encode()).digest()
    return np.frombuffer(digest[:3], np.uint8).copy()


def decode(data: bytes, flags=cv2.IMREAD_UNCHANGED) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)


def png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()


def paint(image_rgb: np.ndarray, edit: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The fake model: `edit` gets `colour`, everything else moves by one grey level."""
    out = image_rgb.astype(np.int16)
    out = np.where(out < 255, out + 1, out - 1)
    out[edit] = colour
    return out.astype(np.uint8)


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stability_key: str, openai_key: str):
        super().__init__(("127.0.0.1", 0), Handler)
        self.stability_key, self.openai_key = stability_key, openai_key
        self.script: list[tuple[int, dict, object]] = []
        self.delay = 0.0
        self.drip = 0.0
        self.log: list[dict] = []
        self.ids = itertools.count(1)
        self.pending: dict[str, tuple[bytes, dict]] = {}

    def handle_error(self, request, client_address) -> None:
        pass  # a client that timed out has hung up: writing to it fails, as it should

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    # -- plumbing ---------------------------------------------------------------------------------------
    def answer(self, status: int, body: object, headers: dict | None = None, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = dict(headers or {})
        self.send_response(status)
        self.send_header("Content-Type", headers.pop("Content-Type", content_type))
        length = headers.pop("Content-Length", len(data))  # a script may lie, or (None) send none
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("x-request-id", f"req_{next(self.server.ids):04d}")
        for k, v in headers.items():
            self.send_header(k, str(v))
        self.end_headers()
        if not getattr(self.server, "drip", 0):  # the Responses API fake borrows this method
            return self.wfile.write(data)
        for i in range(len(data)):
            self.wfile.write(data[i:i + 1])
            self.wfile.flush()
            threading.Event().wait(getattr(self.server, "drip", 0))

    def form(self) -> tuple[dict[str, str], dict[str, bytes], int]:
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("application/json"):
            try:
                return json.loads(raw), {}, length
            except ValueError:
                return {"<not json>": raw.decode("latin-1")}, {}, length
        if not ctype.startswith("multipart/form-data"):
            return {}, {}, length
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
        fields, files = {}, {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if part.get_filename() is not None:
                files[name] = payload
            else:
                fields[name] = payload.decode("utf-8")
        return fields, files, length

    def handle_any(self, method: str) -> None:
        fields, files = {}, {}
        length = 0
        if method == "POST":
            fields, files, length = self.form()
        self.server.log.append({"method": method, "path": self.path, "headers": dict(self.headers),
                                "fields": fields, "files": files, "length": length})
        canned = self.server.script.pop(0) if self.server.script else None  # taken now: a late answer is this one
        if self.server.delay:
            threading.Event().wait(self.server.delay)  # not time.sleep: tests stub that for the client
        if canned:
            status, headers, body = canned
            return self.answer(status, body, headers)
        if self.path.startswith("/v2beta/"):
            return self.stability(method, fields, files, length)
        if self.path == "/v1/images/edits":
            return self.openai(fields, files)
        if self.path == "/v1/images/generations":
            return self.openai_generate(fields)
        self.answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        self.handle_any("POST")

    def do_GET(self) -> None:
        self.handle_any("GET")

    # -- Stability AI v2beta ----------------------------------------------------------------------------
    def stability_refused(self, fields: dict, seed: int, prompt: str) -> bool:
        """Answer a seed or format out of range, or a prompt Stability's moderation flags, as it does; True if so."""
        if not 0 <= seed <= 4294967294 or fields.get("output_format", "png") not in ("jpeg", "png", "webp"):
            self.stability_error(400, "bad_request", "seed or output_format out of range")
            return True
        if "forbidden" in prompt:
            self.stability_error(403, "content_moderation", "Your request was flagged by our content moderation "
                                 "system, as a result your request was denied and you were not charged.")
            return True
        return False

    def stability_error(self, status: int, name: str, *errors: str) -> None:
        self.answer(status, {"id": hashlib.md5(name.encode()).hexdigest(), "name": name, "errors": list(errors)})

    def stability(self, method: str, fields: dict, files: dict, length: int) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.server.stability_key}":
            return self.stability_error(401, "unauthorized", "authorization: invalid or missing header value")
        if method == "GET" and self.path.startswith("/v2beta/results/"):
            gid = self.path.rsplit("/", 1)[1]
            if gid not in self.server.pending:
                return self.stability_error(404, "not_found", f"no generation {gid}")
            body, polls = self.server.pending[gid]
            if polls["left"]:
                polls["left"] -= 1
                return self.answer(202, {"id": gid, "status": "in-progress"})
            del self.server.pending[gid]
            return self.answer(200, body)
        if self.path.startswith("/v2beta/stable-image/generate/"):
            return self.stability_generate(method, fields, files)
        route = self.path.removeprefix("/v2beta/stable-image/edit/")
        if method != "POST" or route not in STABILITY_ROUTES:
            return self.stability_error(404, "not_found", self.path)
        if length > 10 * MB:
            return self.stability_error(413, "payload_too_large", "body: payloads cannot be larger than 10MiB in size")
        if self.headers.get("Accept") not in ("image/*", "application/json"):
            return self.stability_error(400, "bad_request", "accept: must be image/* or application/json")
        image_key = "subject_image" if route == "replace-background-and-relight" else "image"
        image = decode(files.get(image_key, b""), cv2.IMREAD_COLOR)
        if image is None:
            return self.stability_error(400, "bad_request", f"{image_key}: required, an image")
        h, w = image.shape[:2]
        if min(h, w) < 64 or not 4096 <= h * w <= 9_437_184 or not 1 / 2.5 <= w / h <= 2.5:
            return self.stability_error(400, "bad_request", f"{image_key}: {w}x{h} is outside the limits")
        prompt = fields.get("background_prompt" if route == "replace-background-and-relight" else "prompt", "")
        if route in ("inpaint", "search-and-replace", "replace-background-and-relight") and not prompt:
            return self.stability_error(400, "bad_request", "prompt: cannot be empty")
        if route == "search-and-replace" and not fields.get("search_prompt"):
            return self.stability_error(400, "bad_request", "search_prompt: cannot be empty")
        grow_max = {"inpaint": 100, "erase": 20, "search-and-replace": 20}.get(route)
        if "grow_mask" in fields and (grow_max is None or not 0 <= int(fields["grow_mask"]) <= grow_max):
            return self.stability_error(400, "bad_request", f"grow_mask: must be in 0..{grow_max}")
        seed = int(fields.get("seed", "0"))
        if self.stability_refused(fields, seed, prompt):
            return None
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if route in ("inpaint", "erase"):
            mask = decode(files.get("mask", b""), cv2.IMREAD_UNCHANGED)
            if mask is None or mask.ndim != 2 or mask.shape != (h, w) or not set(np.unique(mask)) <= {0, 255}:
                return self.stability_error(400, "bad_request", "mask: a black-and-white image the size of image")
            edit = mask > 127
        elif route == "search-and-replace":
            edit = np.zeros((h, w), bool)
            edit[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = True  # "found" the object in the middle
        else:
            edit = np.ones((h, w), bool)
        seed_used = seed or 123456789
        out = paint(rgb, edit, colour_for(prompt or "erase", seed_used))
        finish = "CONTENT_FILTERED" if "blurme" in prompt else "SUCCESS"
        body = {"image": base64.b64encode(png(out)).decode(), "finish_reason": finish, "seed": seed_used}
        if route == "replace-background-and-relight":
            gid = f"gen{next(self.server.ids):06d}"
            self.server.pending[gid] = (body, {"left": 1})
            return self.answer(200, {"id": gid})
        if self.headers.get("Accept") == "image/*":
            return self.answer(200, png(out), {"finish-reason": finish, "seed": seed_used}, "image/png")
        self.answer(200, body)

    def stability_generate(self, method: str, fields: dict, files: dict) -> None:
        route = self.path.removeprefix("/v2beta/stable-image/generate/")
        if method != "POST" or route not in STABILITY_GENERATE:
            return self.stability_error(404, "not_found", self.path)
        prompt = fields.get("prompt", "")
        if not 1 <= len(prompt) <= 10000:
            return self.stability_error(400, "bad_request", "prompt: required, 1..10000 characters")
        known = {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format", "style_preset"}
        known |= {"image", "strength"} if route in ("ultra", "sd3") else set()
        known |= {"mode", "model", "cfg_scale"} if route == "sd3" else set()
        unknown = set(fields) - known
        if unknown:
            return self.stability_error(400, "bad_request", f"{sorted(unknown)[0]}: not a field of {route}")
        image = decode(files["image"], cv2.IMREAD_COLOR) if "image" in files else None
        if route == "sd3":
            if fields.get("model", "sd3.5-large") not in SD3_MODELS:
                return self.stability_error(400, "bad_request", "model: unknown")
            if fields.get("mode", "text-to-image") != ("image-to-image" if image is not None else "text-to-image"):
                return self.stability_error(400, "bad_request", "mode: image-to-image needs image, text-to-image none")
        if image is not None and ("strength" not in fields or not 0 <= float(fields["strength"]) <= 1
                                  or "aspect_ratio" in fields):
            return self.stability_error(400, "bad_request", "strength: required in 0..1 with an image; no aspect_ratio")
        ratio = fields.get("aspect_ratio", "1:1")
        if ratio not in ASPECT_RATIOS:
            return self.stability_error(400, "bad_request", f"aspect_ratio: one of {', '.join(ASPECT_RATIOS)}")
        seed = int(fields.get("seed", "0"))
        if self.stability_refused(fields, seed, prompt):
            return None
        seed_used = seed or 123456789
        if image is not None:
            h, w = image.shape[:2]
        else:
            a, b = (int(x) for x in ratio.split(":"))
            w, h = round((a / b) ** 0.5 * 16) * 64, round((b / a) ** 0.5 * 16) * 64
        out = np.zeros((h, w, 3), np.uint8)
        out[:] = colour_for(f"{prompt}|{fields.get('negative_prompt', '')}|{route}|{fields.get('model')}", seed_used)
        out[: h // 2, : w // 2] = colour_for(prompt, seed_used + 1)
        finish = "CONTENT_FILTERED" if "blurme" in prompt else "SUCCESS"
        self.answer(200, {"image": base64.b64encode(png(out)).decode(), "finish_reason": finish, "seed": seed_used})

    # -- OpenAI /v1/images/generations ----------------------------------------------------------------------
    def openai_generate(self, body: dict) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.server.openai_key}":
            given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            return self.openai_error(401, f"Incorrect API key provided: {given[:6]}***{given[-4:]}.", "invalid_api_key")
        if not self.headers.get("Content-Type", "").startswith("application/json") or "<not json>" in body:
            return self.openai_error(400, "We could not parse the JSON body of your request.", None)
        model = body.get("model", "dall-e-2")
        if model not in GPT_MODELS:
            return self.openai_error(400, f"Invalid value: '{model}'.", "invalid_value", param="model")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not 0 < len(prompt) <= 32000:
            return self.openai_error(400, "prompt: required, up to 32000 characters", "invalid_value", param="prompt")
        size, n = body.get("size", "auto"), body.get("n", 1)
        if size not in GPT_SIZES or "response_format" in body or not isinstance(n, int) or not 1 <= n <= 10:
            return self.openai_error(400, "size, n or response_format is not supported", "invalid_value")
        if "forbidden" in prompt:
            return self.openai_error(400, "Your request was rejected by the safety system.", "moderation_blocked",
                                     kind="image_generation_user_error")
        w, h = (1024, 1024) if size == "auto" else (int(x) for x in size.split("x"))
        data = []
        for i in range(n):
            out = np.zeros((h, w, 3), np.uint8)
            out[:] = colour_for(prompt, i)
            data.append({"b64_json": base64.b64encode(png(out)).decode()})
        self.answer(200, {"created": int(time.time()), "data": data})

    # -- OpenAI /v1/images/edits ------------------------------------------------------------------------
    def openai_error(self, status: int, message: str, code: str | None, kind="invalid_request_error", param=None):
        self.answer(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})

    def openai(self, fields: dict, files: dict) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.server.openai_key}":
            given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            return self.openai_error(401, f"Incorrect API key provided: {given[:6]}***{given[-4:]}.", "invalid_api_key")
        model = fields.get("model", "gpt-image-1.5")
        if model not in GPT_MODELS | {"dall-e-2"}:
            return self.openai_error(400, f"Invalid value: '{model}'.", "invalid_value", param="model")
        prompt = fields.get("prompt", "")
        if not prompt or len(prompt) > (1000 if model == "dall-e-2" else 32000):
            return self.openai_error(400, "prompt: required, within the model's length", "invalid_value", param="prompt")
        image = decode(files.get("image", b""))
        mask = decode(files.get("mask", b""))
        if image is None:
            return self.openai_error(400, "Invalid image file.", "invalid_image_file", param="image")
        h, w = image.shape[:2]
        size = fields.get("size", "1024x1024" if model == "dall-e-2" else "auto")
        if model == "dall-e-2":
            if files["image"][:8] != b"\x89PNG\r\n\x1a\n" or h != w or len(files["image"]) >= 4 * MB:
                return self.openai_error(400, "Uploaded image must be a PNG and less than 4 MB, and square.",
                                         "invalid_image", param="image")
            if image.ndim != 3 or image.shape[2] != 4:
                return self.openai_error(400, "Invalid input image - format must be in ['RGBA', 'LA', 'L'], got RGB.",
                                         "invalid_image_format", param="image")
            if size not in ("256x256", "512x512", "1024x1024") or "output_format" in fields:
                return self.openai_error(400, "size or output_format is not supported for dall-e-2", "invalid_value")
            if fields.get("response_format") != "b64_json":
                return self.openai_error(400, "this fake only answers response_format=b64_json", "invalid_value")
        else:
            if size not in GPT_SIZES or "response_format" in fields:
                return self.openai_error(400, "size or response_format is not supported for this model", "invalid_value")
        if size != "auto" and size != f"{w}x{h}":
            return self.openai_error(400, f"size {size} differs from the image, {w}x{h}", "invalid_value", param="size")
        if mask is None or files["mask"][:8] != b"\x89PNG\r\n\x1a\n" or len(files["mask"]) >= 4 * MB:
            return self.openai_error(400, "Invalid mask file: a PNG under 4 MB.", "invalid_mask", param="mask")
        if mask.ndim != 3 or mask.shape[2] != 4 or mask.shape[:2] != (h, w):
            return self.openai_error(400, "Invalid mask image format - mask image missing alpha channel, or not "
                                     "the image's size", "invalid_mask_image_format", param="mask")
        n = int(fields.get("n", "1"))
        if not 1 <= n <= 10:
            return self.openai_error(400, "n must be in 1..10", "invalid_value", param="n")
        if "forbidden" in prompt:
            return self.openai_error(400, "Your request was rejected by the safety system.", "moderation_blocked",
                                     kind="image_generation_user_error")
        edit = mask[:, :, 3] == 0
        rgb = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2RGB)
        data = [{"b64_json": base64.b64encode(png(paint(rgb, edit, colour_for(prompt, i)))).decode()} for i in range(n)]
        self.answer(200, {"created": int(time.time()), "data": data})


def start(stability_key: str, openai_key: str) -> FakeServer:
    server = FakeServer(stability_key, openai_key)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server



# Keys the tests' environments hold: every test checks they never reach an output, a log or an error.
STABILITY_KEY = "sk-stab-SECRET-7f3a9c0d1e2b"
OPENAI_KEY = "sk-oai-SECRET-b41d2e9a8c7f"


@pytest.fixture(scope="module")
def fake():
    server = start(STABILITY_KEY, OPENAI_KEY)
    yield server
    server.shutdown()


@pytest.fixture
def server(fake, monkeypatch):
    """The fake with an empty script and log, both services' keys and base URLs pointed at it, and retries and polls
    waiting instantly while recording how long (`server.waits`). Only the HTTP module's clock is replaced: the CLI's
    thread policy samples the load with sleeps of its own."""
    from types import SimpleNamespace

    from editanything.generate.remote import http

    fake.script.clear()
    fake.log.clear()
    fake.delay = 0.0
    monkeypatch.setenv("STABILITY_API_KEY", STABILITY_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("STABILITY_BASE_URL", fake.url)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url + "/v1")
    fake.waits = []
    monkeypatch.setattr(http, "time", SimpleNamespace(time=time.time, monotonic=time.monotonic,
                                                      sleep=fake.waits.append))
    return fake
