"""What the language-model expanders ask for, and how their answer becomes a usable prompt.

A language model is told the target's form (tags or sentences) and asked for the prompt only.
Its answer is then held to the same guarantees as the rules' output:
- the first paragraph is kept, without quotes or a "Prompt:" label;
- every keyword of the user's words appears (missing ones are put first: tags, or appended:
  a sentence "With …");
- tags fit in CLIP's 75-token chunk (the model's own tags are dropped from the end, never the
  user's), prose within the service's limit (cut at a sentence end);
- an empty answer (nothing, or only stop tokens) is a BadOutput, never an empty generation.
The negative prompt is the rules' (rules.py) for the same target and prompt.
"""

from __future__ import annotations

import re
import unicodedata

from ..errors import BadOutput
from .rules import PHOTO_WORDS, mentions, join_words, negative_for, fit_tags, plain, split_keywords
from .types import Target

INSTRUCTIONS = {
    "tags": ("You write prompts for Stable Diffusion. Given a few keywords, answer with one line of comma-separated "
             "tags: the subject first, then the setting, lighting, medium, style and quality. Keep every keyword. "
             "At most 30 words. Answer with the tags only."),
    "sentences": ("You write prompts for an image model that reads plain English. Given a few keywords, describe the "
                  "picture in two or three vivid sentences: the subject, the setting, the light, the medium and the "
                  "style. Keep every keyword. Answer with the description only."),
}
INSTRUCTIONS["prose"] = INSTRUCTIONS["sentences"]
ART_WORDS = frozenset({"painting", "illustration", "drawing", "sketch", "anime", "render", "cartoon", "watercolor"})
_LABEL = re.compile(r"^\s*(?:prompt|tags|description|answer)\s*:\s*", re.IGNORECASE)


def instructions(target: Target) -> str:
    return INSTRUCTIONS[target.form]


def clean(text: str) -> str:
    """The first paragraph of a model's answer, without a label, wrapping quotes, control characters or
    undecodable bytes (a prompt is printed, stored in PNG text and sent as JSON)."""
    text = "".join(c for c in text if c in "\n\t " or (unicodedata.category(c)[0] != "C" and c != "\ufffd"))
    paragraph = next((p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()), "")
    paragraph = " ".join(_LABEL.sub("", paragraph).split())
    return paragraph.strip().strip("\"'`").strip()


def finish(words: str, answer: str, target: Target, who: str) -> tuple[str, str, str]:
    """The prompt, negative prompt and notes made from a language model's `answer` to `words`."""
    text = clean(answer)
    if not text or not re.search(r"\w", text):
        raise BadOutput(f"the language model {who} returned nothing (only stop tokens or blanks) for {words!r}; "
                        "try another --seed, or --expander rules")
    keywords = split_keywords(words)
    notes = ""
    if target.form == "tags":
        text, notes = _fit_tags(keywords, split_keywords(text), target)
    else:
        missing = [plain(k) for k in keywords if plain(k) and plain(k).lower() not in text.lower()]
        if missing:
            text = f"{text.rstrip('.')}. With {join_words(missing)}."
        if target.max_chars is not None and len(text) > target.max_chars:
            cut = text[:target.max_chars]
            text = cut[:cut.rfind(". ") + 1] if ". " in cut else cut
    photo = mentions(text, PHOTO_WORDS) or not mentions(text, ART_WORDS)
    return text, negative_for(target, text, photo), notes


def _fit_tags(keywords: list[str], tags: list[str], target: Target) -> tuple[str, str]:
    lowered = [t.lower() for t in tags]
    parts = [(k, True) for k in keywords if not any(k.lower() in t for t in lowered)]  # missing keywords first
    covered: set[str] = set()
    for tag in tags:
        holds = {k.lower() for k in keywords if k.lower() in tag.lower()} - covered
        covered |= holds
        parts.append((tag, bool(holds)))  # the first tag holding a keyword is kept like the keyword itself
    return fit_tags(parts, target)
