"""A local fake of OpenAI's Responses API (`POST /v1/responses`) for the `openai` prompt expander.

It checks what the real API checks that our client could get wrong (the Bearer key, a JSON body with
`model` and `input`), logs every request (headers and JSON body), and answers as the API does
(openai-python's `types/responses/response.py`): `output: [{type: "message", content: [{type:
"output_text", text}]}]`. Words holding "forbidden" get a `refusal` part; "filtered" an `incomplete`
answer with `incomplete_details.reason = "content_filter"`; "silent" an empty text. A test may
`script` answers (status, headers, body) that are sent first, in order.
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fake_image_apis import Handler as ImageHandler


class FakeResponses(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, key: str):
        super().__init__(("127.0.0.1", 0), Handler)
        self.key = key
        self.script: list[tuple[int, dict, object]] = []
        self.log: list[dict] = []
        self.ids = itertools.count(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


def message(text: str | None = None, refusal: str | None = None, status: str = "completed", reason: str | None = None):
    part = {"type": "refusal", "refusal": refusal} if refusal is not None else {
        "type": "output_text", "text": text or "", "annotations": []}
    return {"id": "resp_1", "object": "response", "status": status,
            "incomplete_details": {"reason": reason} if reason else None,
            "output": [{"type": "reasoning", "id": "rs_1", "summary": []},
                       {"type": "message", "id": "msg_1", "role": "assistant", "status": status, "content": [part]}]}


class Handler(BaseHTTPRequestHandler):
    server: FakeResponses

    def log_message(self, *args) -> None:
        pass

    answer = ImageHandler.answer  # JSON with an x-request-id, as the image APIs' fake answers

    def error(self, status: int, message_text: str, code: str | None, kind: str = "invalid_request_error") -> None:
        self.answer(status, {"error": {"message": message_text, "type": kind, "param": None, "code": code}})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.server.log.append({"path": self.path, "headers": dict(self.headers), "json": body, "raw": raw})
        if self.server.script:
            status, headers, reply = self.server.script.pop(0)
            return self.answer(status, reply, headers)
        if self.path != "/v1/responses":
            return self.error(404, "not found", None)
        if self.headers.get("Authorization") != f"Bearer {self.server.key}":
            given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            return self.error(401, f"Incorrect API key provided: {given[:6]}***{given[-4:]}.", "invalid_api_key")
        if not self.headers.get("Content-Type", "").startswith("application/json") or not isinstance(body, dict):
            return self.error(400, "We could not parse the JSON body of your request.", None)
        if not isinstance(body.get("model"), str) or not isinstance(body.get("input"), str):
            return self.error(400, "Missing required parameter: 'model' or 'input'.", "missing_required_parameter")
        words = body["input"]
        if "forbidden" in words:
            return self.answer(200, message(refusal="I'm sorry, I can't help with that."))
        if "filtered" in words:
            return self.answer(200, message("", status="incomplete", reason="content_filter"))
        if "silent" in words:
            return self.answer(200, message("   "))
        if "sentences" in body.get("instructions", ""):
            return self.answer(200, message(f"A tiger rests by a river under snowy mountains ({words}). "
                                            "Warm evening light."))
        return self.answer(200, message(f"Prompt: {words}, golden light, photograph, highly detailed"))


def start(key: str) -> FakeResponses:
    server = FakeResponses(key)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
