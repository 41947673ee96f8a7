"""The server's limits, credentials and saved styles: plain data, checked once at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError

DEFAULT_MAX_BODY = 50 * 1024 * 1024  # bytes of one request (base64 makes a 37 MB photo this big)
DEFAULT_MAX_PIXELS = 40_000_000  # the UI's limit on one decoded image
DEFAULT_MAX_IMAGES = 16  # batch_size × n_iter of one request
DEFAULT_QUEUE_SIZE = 16  # requests of one model kind waiting or running


@dataclass(frozen=True)
class ServerConfig:
    """`auth`: user → password for HTTP basic auth (empty: no auth). `styles`: the saved styles a request's
    `styles` names (`generate.load_styles`; empty: none). Limits: see the module constants."""

    auth: dict[str, str] = field(default_factory=dict)
    styles: dict[str, Any] = field(default_factory=dict)
    max_body: int = DEFAULT_MAX_BODY
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_images: int = DEFAULT_MAX_IMAGES
    queue_size: int = DEFAULT_QUEUE_SIZE

    def __post_init__(self) -> None:
        for name in ("max_body", "max_pixels", "max_images", "queue_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be an int >= 1; got {value!r}")


def parse_auth(text: str | None) -> dict[str, str]:
    """`user:pass[,user2:pass2]` (the WebUI's --api-auth) as {user: pass}."""
    if not text:
        return {}
    users = {}
    for item in text.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise InvalidInputError(f"--api-auth expects user:password[,user2:password2]; got an entry without "
                                    f"both parts ({user or '?'}:…)")
        users[user] = password
    return users
