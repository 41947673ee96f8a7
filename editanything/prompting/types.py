"""What an expansion is, and the image models it is written for.

Targets (what each image model reads best):
- `sd15`, `sdxl`: comma-separated tags that fit in CLIP's first chunk (75 tokens; the WebUI's weight
  syntax such as `(tiger:1.2)` is kept), and a negative prompt.
- `flux2-klein`: natural sentences; no negative prompt (the step-distilled model runs without CFG).
- `openai`: prose within OpenAI's prompt limit for its GPT image models (32,000 characters, from
  openai-python's `image_edit_params.py`); no negative prompt (the endpoint takes none).
- `stability`: prose within 10,000 characters (Stability's v2beta limit on `prompt` and
  `negative_prompt`, as its API clients state it), with a negative prompt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InvalidInputError

MAX_WORDS_CHARS = 2000
"""The longest input an expander takes: past this, the words are a prompt already."""


@dataclass(frozen=True)
class Target:
    name: str
    form: str  # "tags" | "sentences" | "prose"
    clip_tokens: int | None = None  # the CLIP chunk the prompt must fit in (tags)
    max_chars: int | None = None  # the service's limit (prose)
    negative: bool = True  # whether the model reads a negative prompt
    label: str = ""


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("sd15", "tags", clip_tokens=75, label="Stable Diffusion 1.5"),
    Target("sdxl", "tags", clip_tokens=75, label="SDXL"),
    Target("flux2-klein", "sentences", negative=False, label="FLUX.2 [klein]"),
    Target("openai", "prose", max_chars=32000, negative=False, label="OpenAI image models"),
    Target("stability", "prose", max_chars=10000, label="Stability AI"),
)}


def get_target(target: str | Target) -> Target:
    if isinstance(target, Target):
        return target
    found = TARGETS.get(target)
    if found is None:
        raise InvalidInputError(f"unknown prompt target {target!r}; choose one of: {', '.join(TARGETS)}")
    return found


def check_words(words: Any) -> str:
    """The user's words, stripped; an empty or over-long input is a one-line InvalidInputError."""
    if not isinstance(words, str):
        raise InvalidInputError(f"the words to expand must be text; got {type(words).__name__}")
    text = words.strip()
    if not text:
        raise InvalidInputError('nothing to expand: give a few words, e.g. "river, tiger, mountain, sunset"')
    if len(text) > MAX_WORDS_CHARS:
        raise InvalidInputError(f"the prompt has {len(text)} characters; expansion takes at most "
                                f"{MAX_WORDS_CHARS} (a text that long is a prompt already: use it without --expand)")
    if "\0" in text:
        raise InvalidInputError("the words to expand hold a NUL character; pass plain text")
    return text


@dataclass(frozen=True)
class Expansion:
    """What an expander did: the user's `words`, the `prompt` and `negative_prompt` it wrote for `target`,
    its name, the sha256 of its model file (None for rules and hosted models), the seed, notes (e.g. that
    CLIP tokens were estimated), and for a local language model the `options` that shaped its answer
    (precision, token bound, where it stopped: see prompting/local.py)."""

    words: str
    prompt: str
    negative_prompt: str
    expander: str
    target: str
    seed: int
    model_sha256: str | None = None
    model: str | None = None  # the language model's name or the service's model ID
    notes: str = ""
    options: dict[str, str | int] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.options is None:  # a rules or hosted expansion is recorded as it was before options existed
            del data["options"]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> "Expansion":
        """An expansion read back from a recipe (untrusted): every field is type-checked."""
        if not isinstance(data, dict):
            raise InvalidInputError(f"broken recipe: the prompt expansion must be a JSON object; got {data!r:.60}")
        out: dict[str, Any] = {}
        for name, kind, optional in (("words", str, False), ("prompt", str, False), ("negative_prompt", str, False),
                                     ("expander", str, False), ("target", str, False), ("seed", int, False),
                                     ("model_sha256", str, True), ("model", str, True), ("notes", str, True)):
            value = data.get(name)
            if value is None and optional:
                continue
            if not isinstance(value, kind) or isinstance(value, bool) or (kind is str and len(value) > 40000):
                raise InvalidInputError(f"broken recipe: prompt expansion field {name!r} must be a "
                                        f"{kind.__name__}; got {value!r:.60}")
            out[name] = value
        options = data.get("options")
        if options is not None:
            if (not isinstance(options, dict) or len(options) > 16
                    or not all(isinstance(k, str) and len(k) <= 40 and isinstance(v, (str, int))
                               and not isinstance(v, bool) and len(str(v)) <= 200 for k, v in options.items())):
                raise InvalidInputError(f"broken recipe: prompt expansion field 'options' must map names to short "
                                        f"texts or integers; got {options!r:.60}")
            out["options"] = dict(options)
        return cls(**out)
