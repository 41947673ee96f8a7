"""HTTP for the hosted generators: multipart POST, retries, one-line errors, and keys kept out of sight.

Standard library only (urllib), so the base install needs no HTTP package.

- Keys come only from environment variables (`api_key`), must be printable ASCII without spaces
  (else refused naming the variable, never showing the value), and travel only in the
  `Authorization: Bearer` header to the base URL the user set: redirects are never followed, and plain
  `http://` goes only to this machine unless insecure transport is allowed (`check_base_url`). Every
  message this module builds is scrubbed of the key and of any prefix of it a quoted body cut short;
  the log lines name the method, URL, status and request id, never a header.
- An answer is read with a byte cap and a deadline for the whole answer, not per socket read: a
  server that drips bytes is cut off at `timeout`.
- 429 and 5xx answers are retried with exponential backoff (`backoff * 2**attempt`, jittered), honouring
  the service's `Retry-After` (seconds or an HTTP date, RFC 9110 §10.2.3) and OpenAI's `retry-after-ms`
  (the header openai-python's client reads, `_base_client.py`). The waits of one request never add up to
  more than `max_wait`: a service asking for longer fails at once, saying so.
- A quota error (the account is out of credits) is not retried: waiting does not refill it.
- A read that takes longer than `timeout` is not retried either: the service may already have charged it.
- A circuit breaker (`Breaker`): after `limit` requests in a row ended in a timeout, no connection or
  5xx, the next requests fail at once for `cooldown` s (a batch against a dead endpoint ends in
  seconds, not hours; the photos not sent have no output, so a re-run sends them).
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import logging
import os
import random
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ...errors import NOT_ANSWERING, InvalidInputError, RemoteServiceError, ServiceDown

log = logging.getLogger("editanything.remote")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space: what a header value can carry
SCRUB_PREFIX = 6  # a quoted body cut mid-key still shows no more than this many of the key's characters
DEFAULT_MAX_BODY = 1024 * 1024  # answers that hold no image (errors, job ids)
INSECURE_VARIABLE = "EDITANYTHING_ALLOW_INSECURE"


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
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return None


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart body."""

    filename: str
    data: bytes
    content_type: str = "image/png"


def api_key(variable: str, service: str) -> str:
    """The key in environment variable `variable`, or a one-line error naming that variable (never the value)."""
    key = os.environ.get(variable, "").strip()
    if not key:
        raise InvalidInputError(f"{service} needs an API key: set the environment variable {variable} "
                                "(the key is read from there only, never from a recipe or a file)")
    if not KEY_CHARACTERS.fullmatch(key):
        raise InvalidInputError(f"the environment variable {variable} holds characters no API key has (a space, "
                                "a line break, a control or non-ASCII character); set it to the key alone")
    return key


def scrub(text: str, key: str) -> str:
    """`text` with the key, and every run of its first SCRUB_PREFIX or more characters, replaced by ***."""
    if not key:
        return text
    text = text.replace(key, "***")
    head = key[:SCRUB_PREFIX]
    out, i = [], 0
    while (start := text.find(head, i)) >= 0:
        end = start + len(head)
        while end < len(text) and end - start < len(key) and text[end] == key[end - start]:
            end += 1
        out += [text[i:start], "***"]
        i = end
    return "".join(out) + text[i:]


def insecure_allowed() -> bool:
    return os.environ.get(INSECURE_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def check_base_url(url: str, variable: str, service: str, allow_insecure: bool = False) -> str:
    """`url` if the key may go there: https anywhere, http only to a loopback host unless insecure is allowed."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(f"{service}'s base URL {url!r} (from {variable} or the default) is not an "
                                "http(s) address; set it to https://host[/path]")
    if parts.username or parts.password:
        raise InvalidInputError(f"{service}'s base URL in {variable} holds a user name or password; remove "
                                "them (the key travels in a header)")
    if parts.scheme == "http" and not (allow_insecure or insecure_allowed() or is_loopback(parts.hostname)):
        raise InvalidInputError(f"{service}'s base URL {url} is plain http to another machine: the key and the "
                                f"photos would travel unencrypted; use https, or pass --allow-insecure (or set "
                                f"{INSECURE_VARIABLE}=1) if that network is trusted")
    return url


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def in_clear(url: str, cargo: str) -> str:
    """What a dry run adds when `url` is plain http to another machine (the key and `cargo` would travel
    unencrypted), else ""."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or is_loopback(parts.hostname or ""):
        return ""
    return (f"; UNENCRYPTED: plain http to another machine (allowed by --allow-insecure), the key and the {cargo} "
            "travel in clear")


def answer_cap(width: int, height: int, images: int = 1) -> int:
    """Bytes an answer holding `images` PNGs of width x height may take: incompressible RGBA, base64 in JSON."""
    png = width * height * 4 + height + (width * height * 4) // 64 + 64 * 1024  # filter bytes, deflate blocks
    return images * png * 4 // 3 + DEFAULT_MAX_BODY


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


class Breaker:
    """Counts requests in a row that found the service down; at `limit`, refuses to send for `cooldown` s.

    Shared by every copy of one generator (and so by every photo of a batch in one process).
    """

    def __init__(self, limit: int = 3, cooldown: float = 60.0) -> None:
        self.limit, self.cooldown = limit, cooldown
        self._down, self._opened = 0, None
        self._lock = threading.Lock()

    def __reduce__(self):  # a worker process gets a fresh one (a lock does not pickle)
        return Breaker, (self.limit, self.cooldown)

    def check(self, service: str) -> None:
        with self._lock:
            if self._opened is not None and time.monotonic() - self._opened < self.cooldown:
                raise ServiceDown(f"{service}{NOT_ANSWERING}not sent ({self._down} requests in a row timed out, "
                                  "found no connection or failed with 5xx; a re-run sends it)")

    def record(self, down: bool) -> None:
        with self._lock:
            self._down = self._down + 1 if down else 0
            self._opened = time.monotonic() if self._down >= self.limit else None


class _Down(RemoteServiceError):
    """A request that found the service down (timeout, no connection): counted by the breaker."""


@dataclass
class Client:
    """Sends one service's requests. `error_for(response)` turns a non-2xx answer into that service's error."""

    service: str
    key: str
    error_for: Callable[[Response], RemoteServiceError]
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = field(default=lambda seconds: time.sleep(seconds))
    breaker: Breaker = field(default_factory=Breaker)

    def scrub(self, text: str) -> str:
        return scrub(text, self.key)

    def request(self, method: str, url: str, *, fields: Mapping[str, str] | None = None,
                files: Mapping[str, Upload] | None = None, accept: str = "application/json",
                json_body: Any = None, max_bytes: int = DEFAULT_MAX_BODY) -> Response:
        """Send with retries; return the 2xx answer or raise the service's RemoteServiceError (one line).

        A POST carries `json_body` as JSON when given (the text APIs), else `fields` and `files` as multipart.
        An answer over `max_bytes` is refused unread (a little above the largest image the endpoint returns).
        """
        self.breaker.check(self.service)
        try:
            response = self._request(method, url, fields, files, accept, json_body, max_bytes)
        except _Down as exc:
            self.breaker.record(True)
            raise RemoteServiceError(str(exc)) from None
        except RemoteServiceError:
            self.breaker.record(False)  # the service answered: it is up
            raise
        self.breaker.record(False)
        return response

    def _request(self, method: str, url: str, fields: Mapping[str, str] | None, files: Mapping[str, Upload] | None,
                 accept: str, json_body: Any, max_bytes: int) -> Response:
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
            response = self._send(method, url, body, headers, max_bytes)
            log.info("%s %s -> %s (request id %s, attempt %d)", method, url, response.status,
                     response.request_id or "-", attempt)
            if 200 <= response.status < 300:
                return response
            if 300 <= response.status < 400:
                raise RemoteServiceError(self.scrub(
                    f"{self.service} answered HTTP {response.status}, a redirect to "
                    f"{_origin(response.headers.get('location', ''), url)}: not followed, since the key would go "
                    "with it; if that is the service's address, set the base URL to it"))
            error = self.error_for(response)
            error = type(error)(self.scrub(str(error)))
            if response.status not in RETRY_STATUSES or isinstance(error, QuotaExceeded):
                raise error
            if attempt == self.policy.attempts:
                kind = _Down if response.status >= 500 else type(error)
                raise kind(f"{error} (gave up after {attempt} attempts)")
            asked = retry_after(response.headers)
            wait = asked if asked is not None else self.policy.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
            if waited + wait > self.policy.max_wait:
                raise type(error)(f"{error} (the service asked to wait {wait:.0f} s more; the cap on waiting "
                                  f"is {self.policy.max_wait:.0f} s)")
            log.info("%s: status %s, waiting %.2f s before attempt %d", self.service, response.status, wait, attempt + 1)
            self.sleep(wait)
            waited += wait

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str], max_bytes: int) -> Response:
        """One request over http.client (which follows no redirect), cut off `timeout` s after it started."""
        parts = urllib.parse.urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        late = f"{self.service} did not answer within {self.policy.timeout:g} s ({method} {url}); try again later"
        connection = _connection(parts, self.policy.timeout)
        expired, sockets = threading.Event(), []

        def hang_up() -> None:  # the socket timeout is per read: a dripping answer would never trip it
            expired.set()
            for sock in sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        timer = threading.Timer(self.policy.timeout, hang_up)
        timer.daemon = True
        timer.start()
        answer = None
        try:
            connection.connect()
            sockets.append(connection.sock)  # held here: http.client lets go of it once the headers are read
            if expired.is_set():
                raise TimeoutError
            connection.request(method, target, body=body, headers=headers)
            answer = connection.getresponse()
            declared = answer.getheader("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise RemoteServiceError(self._too_big(method, url, f"{int(declared):,} bytes, over", max_bytes))
            chunks, size = [], 0
            while chunk := answer.read(min(1 << 20, max_bytes + 1 - size)):
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    raise RemoteServiceError(self._too_big(method, url, "over", max_bytes))
            if expired.is_set():  # an answer without a length ends where the deadline cut it
                raise TimeoutError
            if declared and declared.isdigit() and size < int(declared):  # read(n) returns short, never raises
                raise http.client.IncompleteRead(b"".join(chunks), int(declared) - size)
            return Response(answer.status, _lower(answer.headers), b"".join(chunks))
        except (TimeoutError, socket.timeout):
            raise _Down(late) from None
        except http.client.IncompleteRead as exc:
            if expired.is_set():
                raise _Down(late) from None
            raise _Down(f"{self.service} broke off its answer after {len(exc.partial):,} bytes "
                        f"({method} {url}); try again later") from None
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise _Down(late) from None
            reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc) or type(exc).__name__
            raise _Down(self.scrub(f"cannot reach {self.service} at {url}: {reason}")) from None
        finally:
            timer.cancel()
            if answer is not None:
                answer.close()
            connection.close()

    def _too_big(self, method: str, url: str, size: str, max_bytes: int) -> str:
        return (f"{self.service} answered with {size} the cap of {max_bytes:,} bytes for an answer to {method} "
                f"{url}; refused, not read further")


def _connection(parts: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
    """A connection to the URL's host, through the proxy the environment names for it (a CONNECT tunnel)."""
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        connection = cls(via.hostname, via.port or 8080, timeout=timeout)
        connection.set_tunnel(parts.hostname, port)
        return connection
    return cls(parts.hostname, port, timeout=timeout)


def _origin(location: str, base: str) -> str:
    """Scheme, host and port of a redirect's target (no path: it may carry tokens)."""
    parts = urllib.parse.urlsplit(urllib.parse.urljoin(base, location))
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}" if parts.netloc else "an unnamed address"


def _lower(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()} if headers is not None else {}
