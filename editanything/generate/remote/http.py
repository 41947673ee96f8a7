"""HTTP for the hosted generators: multipart POST, retries, one-line errors, and keys kept out of sight.

Standard library only (urllib), so the base install needs no HTTP package.

- Keys come only from environment variables (`api_key`) and travel only in the `Authorization: Bearer`
  header; every message this module builds is scrubbed of the key, and the log lines name the
  method, URL, status and request id, never a header.
- 429 and 5xx answers are retried with exponential backoff (`backoff * 2**attempt`, jittered), honouring
  the service's `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3) and OpenAI's `retry-after-ms`
  (the header openai-python's client reads, `_base_client.py`). The waits of one request never add up to
  more than `max_wait`: a service asking for longer fails at once, saying so.
- A quota error (the account is out of credits) is not retried: waiting does not refill it.
- A read that takes longer than `timeout` is not retried either: the service may already have charged it.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import socket
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ...errors import InvalidInputError, RemoteServiceError

log = logging.getLogger("editanything.remote")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ContentRefused(RemoteServiceError):
    """The service's content filter refused the prompt or the image (or blurred its answer)."""


class QuotaExceeded(RemoteServiceError):
    """The account has no credits or quota left; retrying does not help."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: `attempts` in all, `timeout` seconds per answer, at most `max_wait` seconds of waiting."""

    attempts: int = 4
    backoff: float = 1.0
    max_wait: float = 60.0
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff < 0 or self.max_wait < 0 or self.timeout <= 0:
            raise InvalidInputError(f"bad retry policy {self}: attempts >= 1, backoff/max_wait >= 0, timeout > 0")


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart body."""

    filename: str
    data: bytes
    content_type: str = "image/png"


def api_key(variable: str, service: str) -> str:
    """The key in environment variable `variable`, or a one-line error naming that variable."""
    key = os.environ.get(variable, "").strip()
    if not key:
        raise InvalidInputError(f"{service} needs an API key: set the environment variable {variable} "
                                "(the key is read from there only, never from a recipe or a file)")
    return key


def encode_multipart(fields: Mapping[str, str], files: Mapping[str, Upload]) -> tuple[bytes, str]:
    """A multipart/form-data body (RFC 7578) and its Content-Type with the boundary."""
    boundary = f"editanything-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + str(value).encode("utf-8") + b"\r\n")
    for name, upload in files.items():
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{upload.filename}"\r\n'
                f"Content-Type: {upload.content_type}\r\n\r\n")
        parts.append(head.encode() + upload.data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the service asks to wait: `retry-after-ms`, or `Retry-After` as seconds or an HTTP date."""
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass
class Client:
    """Sends one service's requests. `error_for(response)` turns a non-2xx answer into that service's error."""

    service: str
    key: str
    error_for: Callable[[Response], RemoteServiceError]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = field(default=lambda seconds: time.sleep(seconds))

    def scrub(self, text: str) -> str:
        return text.replace(self.key, "***") if self.key else text

    def request(self, method: str, url: str, *, fields: Mapping[str, str] | None = None,
                files: Mapping[str, Upload] | None = None, accept: str = "application/json",
                json_body: Any = None) -> Response:
        """Send with retries; return the 2xx answer or raise the service's RemoteServiceError (one line).

        A POST carries `json_body` as JSON when given (the text APIs), else `fields` and `files` as multipart.
        """
        if method == "POST" and json_body is not None:
            body, content_type = json.dumps(json_body).encode("utf-8"), "application/json"
        else:
            body, content_type = (encode_multipart(fields or {}, files or {}) if method == "POST" else (None, None))
        headers = {"Authorization": f"Bearer {self.key}", "Accept": accept, "User-Agent": "editanything"}
        if content_type:
            headers["Content-Type"] = content_type
        waited, attempt = 0.0, 0
        while True:
            attempt += 1
            response = self._send(method, url, body, headers)
            log.info("%s %s -> %s (request id %s, attempt %d)", method, url, response.status,
                     response.request_id or "-", attempt)
            if 200 <= response.status < 300:
                return response
            error = self.error_for(response)
            error = type(error)(self.scrub(str(error)))
            if response.status not in RETRY_STATUSES or isinstance(error, QuotaExceeded):
                raise error
            if attempt == self.policy.attempts:
                raise type(error)(f"{error} (gave up after {attempt} attempts)")
            asked = retry_after(response.headers)
            wait = asked if asked is not None else self.policy.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
            if waited + wait > self.policy.max_wait:
                raise type(error)(f"{error} (the service asked to wait {wait:.0f} s more; the cap on waiting "
                                  f"is {self.policy.max_wait:.0f} s)")
            log.info("%s: status %s, waiting %.2f s before attempt %d", self.service, response.status, wait, attempt + 1)
            self.sleep(wait)
            waited += wait

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> Response:
        request = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.policy.timeout) as answer:
                return Response(answer.status, _lower(answer.headers), answer.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return Response(exc.code, _lower(exc.headers), exc.read())
        except (TimeoutError, socket.timeout):
            raise RemoteServiceError(f"{self.service} did not answer within {self.policy.timeout:g} s "
                                     f"({method} {url}); try again later") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise RemoteServiceError(f"{self.service} did not answer within {self.policy.timeout:g} s "
                                         f"({method} {url}); try again later") from None
            raise RemoteServiceError(self.scrub(f"cannot reach {self.service} at {url}: {exc.reason}")) from None


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()} if headers is not None else {}
