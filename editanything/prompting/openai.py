"""OpenAI's Responses API writes the prompt: `--expander openai`. Only the words leave the machine.

`POST {base}/responses` with `model`, `instructions` (the target's form, shaping.py), `input` (the
user's words), `max_output_tokens` and `store: false` (nothing kept at OpenAI for later retrieval).
The key comes from OPENAI_API_KEY only; OPENAI_BASE_URL (ending in /v1, as OpenAI's clients read it)
points elsewhere (tests use a local fake). Requests go through the image APIs' HTTP client
(generate/remote/http.py): retries with backoff on 429/5xx, Retry-After honoured, one-line errors,
the key kept out of every message. The API takes no seed: the recipe keeps the expansion instead.

Facts (openai-python at e43b4224, 2026-08-21, generated from OpenAI's OpenAPI spec):
- `responses/response_create_params.py`: the request fields above; `max_output_tokens` bounds visible
  and reasoning tokens together.
- `responses/response.py`: the answer's `output` holds `message` items whose `content` parts are
  `output_text` (`text`) or `refusal` (`refusal`); `status` may be `incomplete` with
  `incomplete_details.reason` `max_output_tokens` or `content_filter`.
- `shared/chat_model.py`: `gpt-5.4-mini` and `gpt-5.4-nano` (dated 2026-03-17) are the current small
  models; the default is `gpt-5.4-mini`. Model IDs retire: `--llm-model` changes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import BadOutput, InvalidInputError
from ..generate.remote.http import Client, ContentRefused, RetryPolicy, api_key, check_base_url
from ..generate.remote.openai import error_from
from .shaping import finish, instructions
from .types import Expansion, Target, check_words, get_target

DEFAULT_MODEL = "gpt-5.4-mini"
MAX_OUTPUT_TOKENS = 1024  # room for a reasoning model's hidden tokens; the prompt itself is far shorter
KEY_VARIABLE, BASE_VARIABLE, DEFAULT_BASE = "OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"


@dataclass(repr=False)
class OpenAIExpander:
    """Expands through OpenAI's Responses API with `model`."""

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    timeout: float = 60.0
    attempts: int = 4
    max_wait: float = 60.0
    backoff: float = 1.0

    name = "openai"

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip() or any(c.isspace() for c in self.model):
            raise InvalidInputError(f"--llm-model must be an OpenAI model ID such as {DEFAULT_MODEL}; got {self.model!r}")
        self.base_url = (self.base_url or os.environ.get(BASE_VARIABLE) or DEFAULT_BASE).rstrip("/")
        check_base_url(self.base_url, BASE_VARIABLE, "OpenAI")
        self.policy = RetryPolicy(self.attempts, self.backoff, self.max_wait, self.timeout)
        # read once, up front: a missing key stops before anything is sent, naming the variable
        self._key = api_key(KEY_VARIABLE, "OpenAI")

    def __repr__(self) -> str:  # keep the key out for sure
        return f"OpenAIExpander(model={self.model!r}, base_url={self.base_url!r})"

    def describe(self) -> str:
        host = self.base_url.split("://", 1)[-1].split("/", 1)[0]
        return f"openai ({self.model} through the Responses API; the words are sent to {host})"

    def request_body(self, words: str, target: Target) -> dict[str, Any]:
        limit = f" At most {target.max_chars} characters." if target.max_chars else ""
        return {"model": self.model, "instructions": instructions(target) + limit, "input": words,
                "max_output_tokens": MAX_OUTPUT_TOKENS, "store": False}

    def expand(self, words: str, target: str | Target, seed: int) -> Expansion:
        text = check_words(words)
        target = get_target(target)
        body = self.request_body(text, target)
        url = f"{self.base_url}/responses"
        client = Client("OpenAI", self._key, lambda r: error_from(r, f"OpenAI responses ({self.model})",
                                                                        KEY_VARIABLE), self.policy)
        response = client.request("POST", url, json_body=body)
        answer = self._answer_text(response)
        prompt, negative, notes = finish(text, answer, target, f"OpenAI {self.model}")
        request_id = f"; request id {response.request_id}" if response.request_id else ""
        return Expansion(words=text, prompt=prompt, negative_prompt=negative, expander=self.name, target=target.name,
                         seed=seed, model=self.model,
                         notes=" ".join(filter(None, [notes, f"OpenAI takes no seed{request_id}"])))

    def _answer_text(self, response: Any) -> str:
        data = response.json()
        where = f"OpenAI responses ({self.model})" + (f", request id {response.request_id}" if response.request_id else "")
        if not isinstance(data, dict):
            raise BadOutput(f"{where}: the answer is not JSON")
        details = data.get("incomplete_details") or {}
        if isinstance(details, dict) and details.get("reason") == "content_filter":
            raise ContentRefused(f"{where}: the content filter stopped the answer; change the words")
        parts = [part for item in data.get("output") or [] if isinstance(item, dict) and item.get("type") == "message"
                 for part in item.get("content") or [] if isinstance(part, dict)]
        refusals = [str(p.get("refusal", "")) for p in parts if p.get("type") == "refusal"]
        if refusals:
            reason = " ".join(" ".join(refusals).split())[:160]
            raise ContentRefused(f"{where}: the model refused ({reason}); change the words")
        text = "".join(str(p.get("text", "")) for p in parts if p.get("type") == "output_text")
        if not text.strip() and isinstance(details, dict) and details.get("reason") == "max_output_tokens":
            raise BadOutput(f"{where}: the answer ran out of its {MAX_OUTPUT_TOKENS} output tokens before any text; "
                            "try again, or another --llm-model")
        return text
