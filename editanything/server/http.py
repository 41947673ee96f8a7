"""Every route's envelope: basic auth, the body-size limit, and errors as one line in the WebUI's error body.

Done in the route class, not in middleware, so the same routes work on their own app (`serve`) and
added to gradio's running app (`ui --api`), whose middleware stack is fixed once it has started.
The WebUI's error body is `{"error", "detail", "body", "errors"}` (its api middleware); `detail`
holds our one line.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import Callable

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from ..errors import (BadOutput, Cancelled, EditAnythingError, ImageError, InvalidInputError, MissingDependency,
                      ModelNotFound, NothingFound, first_line)
from .config import ServerConfig

log = logging.getLogger(__name__)


class ApiError(EditAnythingError):
    """A request the server turns away with `status` (a full queue, a body over the limit, a missing route)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": message, "body": "", "errors": message}, status_code=status,
                        headers=headers)


_STATUS = ((ApiError, None), (ImageError, 422), (InvalidInputError, 422), (NothingFound, 422), (BadOutput, 422),
           (ModelNotFound, 404), (MissingDependency, 501), (Cancelled, 409))


def _status_of(exc: EditAnythingError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status if status is not None else exc.status
    return 500


def validation_line(exc: RequestValidationError) -> str:
    """pydantic's list of errors as one line naming the first field."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    where = [str(x) for x in first.get("loc", ()) if x != "body"]
    field = ".".join(where) or "body"
    if first.get("type") == "extra_forbidden":
        return f"unknown field {field!r}: this server takes the WebUI's fields listed at /docs"
    if first.get("type") in ("json_invalid", "model_attributes_type") or not where:
        return f"the body must be a JSON object of the fields listed at /docs ({first.get('msg', 'invalid')})"
    return f"{field}: {first.get('msg', 'invalid value')}"


def make_route_class(config: ServerConfig) -> type[APIRoute]:
    """An APIRoute that checks auth and body size first and answers every error in the WebUI's shape."""

    class ApiRoute(APIRoute):
        def get_route_handler(self) -> Callable:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                denied = _check_auth(request, config.auth)
                if denied is not None:
                    return denied
                try:
                    await _read_body(request, config.max_body)
                    return await handler(request)
                except RequestValidationError as exc:
                    return error_response(422, "RequestValidationError", validation_line(exc))
                except HTTPException as exc:
                    return error_response(exc.status_code, "HTTPException", str(exc.detail))
                except EditAnythingError as exc:
                    return error_response(_status_of(exc), type(exc).__name__, first_line(exc))
                except MemoryError:
                    return error_response(413, "MemoryError", "out of memory: send a smaller image or fewer images")
                except Exception as exc:  # a bug: logged with its trace, answered in one line
                    log.exception("unexpected error in %s", request.url.path)
                    return error_response(500, type(exc).__name__, f"unexpected {type(exc).__name__}: "
                                          f"{first_line(exc)} (details are in the server log)")

            return guarded

    return ApiRoute


def _check_auth(request: Request, users: dict[str, str]) -> Response | None:
    if not users:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    user = password = ""
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            pass
    expected = users.get(user)
    # compare_digest over bytes: the time taken does not say how much of the password was right
    if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
        return error_response(401, "HTTPException", "authentication required: HTTP basic auth with a user of "
                              "--api-auth", headers={"WWW-Authenticate": "Basic"})
    return None


async def _read_body(request: Request, limit: int) -> None:
    """Read the body up to `limit` bytes, so later reads get it from memory; ApiError 413 past the limit."""
    length = request.headers.get("content-length")
    too_big = f"the request body is over the limit of {limit:,} bytes; send a smaller image"
    if length is not None and length.isdigit() and int(length) > limit:
        raise ApiError(413, too_big)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, too_big)
        chunks.append(chunk)
    request._body = b"".join(chunks)  # starlette's own cache: request.body() and .json() read it
