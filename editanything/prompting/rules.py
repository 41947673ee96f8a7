"""The `rules` expander: keywords → slots → a prompt, by a fixed, documented rule set. Not a language model.

1. The words are split at commas, semicolons and line breaks; each piece is trimmed, and repeats
   (ignoring case) are dropped. WebUI weights stay with their keyword: `(tiger:1.3)` is one keyword.
2. Each keyword goes to one slot, the first whose word list holds one of its words (plurals count:
   "mountains", "skies"): medium, style, lighting, quality, setting; any other keyword is a subject.
3. Slots the words leave empty get defaults; the seed picks among a few (so `--n 4` gives four
   variations, and the same words, target and seed always give the same prompt): the medium is a
   photograph (what an edit of a photo needs), the lighting and a composition hint vary, and quality
   tags close a tag prompt.
4. Stable Diffusion 1.5 / SDXL: comma-separated tags in the order subject, setting, lighting, medium,
   style, composition, quality. The defaults are dropped, last first, until the prompt fits in CLIP's
   first chunk (75 tokens, counted with the CLIP tokenizer when its vocabulary is on disk, else an
   over-estimate); the user's keywords are never dropped, and keywords alone longer than a chunk are
   an error.
5. FLUX.2 [klein] and the hosted services: sentences built from the same slots ("A photograph of a
   tiger, in a scene with a river and trees. The mood is set by sunset. …"), keywords as written
   without weight brackets, within the service's length limit.
6. The negative prompt is the target's list (none for FLUX.2 klein and OpenAI, which take none),
   plus "cartoon, illustration" for a photograph, less every entry sharing a word with the prompt
   (asking for a painting takes "painting" out of the negative).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from ..errors import InvalidInputError
from ..generate.prompts import BREAK, parse_prompt_attention
from .clip_tokens import token_counter
from .types import Expansion, Target, check_words, get_target

LEXICON: dict[str, frozenset[str]] = {
    "medium": frozenset({
        "photo", "photograph", "photography", "painting", "watercolor", "watercolour", "sketch", "drawing",
        "pencil", "charcoal", "illustration", "render", "3d", "anime", "manga", "cartoon", "pixel", "ink",
        "pastel", "engraving", "woodcut", "poster", "sculpture", "lineart", "gouache", "acrylic", "polaroid",
        "film", "mosaic", "collage", "comic", "vector", "claymation", "origami",
    }),
    "style": frozenset({
        "cinematic", "surreal", "surrealism", "impressionist", "impressionism", "minimalist", "minimalism",
        "vintage", "retro", "cyberpunk", "steampunk", "fantasy", "noir", "baroque", "gothic", "nouveau", "deco",
        "ukiyo-e", "pop", "abstract", "realistic", "photorealistic", "hyperrealistic", "dreamy", "whimsical",
        "futuristic", "sci-fi", "epic", "romantic", "expressionist", "cubist", "renaissance", "victorian",
        "medieval", "isometric", "studio ghibli", "synthwave", "vaporwave", "pastoral", "gritty", "moody",
    }),
    "lighting": frozenset({
        "sunset", "sunrise", "dawn", "dusk", "twilight", "golden hour", "blue hour", "night", "midnight",
        "moonlight", "moonlit", "sunlight", "sunlit", "backlit", "backlight", "neon", "candlelight", "fog",
        "foggy", "mist", "misty", "haze", "hazy", "overcast", "storm", "stormy", "rain", "rainy", "noon",
        "daylight", "lighting", "light", "glow", "glowing", "shadow", "silhouette", "aurora", "starlight",
        "starry", "lantern", "firelight", "spotlight",
    }),
    "quality": frozenset({
        "detailed", "4k", "8k", "hd", "hdr", "uhd", "masterpiece", "sharp", "high resolution", "best quality",
        "intricate", "high detail", "ultra detailed",
    }),
    "setting": frozenset({
        "mountain", "river", "lake", "sea", "ocean", "beach", "coast", "shore", "forest", "wood", "tree",
        "jungle", "desert", "city", "street", "town", "village", "room", "kitchen", "bedroom", "garden", "park",
        "field", "meadow", "valley", "hill", "cliff", "canyon", "island", "sky", "cloud", "waterfall", "snow",
        "cave", "castle", "space", "galaxy", "bridge", "road", "harbor", "harbour", "market", "temple", "ruin",
        "landscape", "countryside", "farm", "swamp", "glacier", "volcano", "grass", "background", "interior",
        "alley", "rooftop", "library", "cafe", "studio", "stage", "underwater", "savanna", "prairie", "pond",
        "stream", "seashore", "skyline", "highway", "station", "church", "palace", "tundra", "reef",
    }),
}
SLOT_ORDER = ("medium", "style", "lighting", "quality", "setting")

DEFAULT_MEDIUM = "photograph"
DEFAULT_LIGHTING = ("soft natural light", "golden hour light", "dramatic lighting", "diffused daylight")
COMPOSITION = ("depth of field", "wide shot", "rule of thirds", "detailed background")
QUALITY_TAGS = ("highly detailed", "sharp focus")
QUALITY_EXTRA = ("high resolution", "rich colors", "fine texture", "crisp detail")
CLOSING_SENTENCES = (
    "Rich, sharp detail and a natural sense of depth.",
    "Crisp focus, fine texture and balanced colours.",
    "Carefully composed, with clear detail throughout.",
    "High resolution, with true-to-life colour and depth.",
)

NEGATIVES = {
    "sd15": ("lowres", "blurry", "jpeg artifacts", "watermark", "text", "signature", "deformed", "bad anatomy",
             "extra limbs", "bad hands", "cropped", "worst quality", "low quality"),
    "sdxl": ("blurry", "lowres", "watermark", "text", "deformed", "bad anatomy", "low quality"),
    "stability": ("blurry", "low quality", "watermark", "text", "deformed"),
}
PHOTO_NEGATIVES = ("cartoon", "illustration")
PHOTO_WORDS = frozenset({"photo", "photograph", "photography", "polaroid", "film"})


@dataclass
class Slots:
    """The user's keywords by slot, in their order."""

    subject: list[str] = field(default_factory=list)
    setting: list[str] = field(default_factory=list)
    lighting: list[str] = field(default_factory=list)
    medium: list[str] = field(default_factory=list)
    style: list[str] = field(default_factory=list)
    quality: list[str] = field(default_factory=list)

    def keywords(self) -> list[str]:
        return [*self.subject, *self.setting, *self.lighting, *self.medium, *self.style, *self.quality]


def split_keywords(words: str) -> list[str]:
    """Rule 1: the keywords of `words`, trimmed, without repeats (ignoring case)."""
    seen: set[str] = set()
    out = []
    for piece in re.split(r"[,;\n]", words):
        keyword = " ".join(piece.split())
        if keyword and keyword.lower() not in seen:
            seen.add(keyword.lower())
            out.append(keyword)
    return out


def plain(keyword: str) -> str:
    """A keyword without WebUI weight brackets: `(tiger:1.3)` → `tiger`."""
    return " ".join("".join(p for p, w in parse_prompt_attention(keyword) if (p, w) != BREAK).split())


def _forms(word: str) -> set[str]:
    forms = {word}
    if word.endswith("ies") and len(word) > 4:
        forms.add(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        forms.add(word[:-2])
    if word.endswith("s") and len(word) > 2:
        forms.add(word[:-1])
    return forms


def slot_of(keyword: str) -> str:
    """Rule 2: the slot a keyword goes to."""
    text = plain(keyword).lower()
    words = re.findall(r"[\w\-]+", text)
    forms = set().union(*(_forms(w) for w in words)) if words else set()
    for slot in SLOT_ORDER:
        lexicon = LEXICON[slot]
        if forms & lexicon or any(" " in entry and entry in text for entry in lexicon):
            return slot
    return "subject"


def classify(keywords: list[str]) -> Slots:
    slots = Slots()
    for keyword in keywords:
        getattr(slots, slot_of(keyword)).append(keyword)
    return slots


def _with_article(phrase: str) -> str:
    lower = phrase.lower()
    if re.match(r"^(a|an|the|some|two|three|many|\d+)\b", lower) or (lower.endswith("s") and not lower.endswith("ss")):
        return phrase
    return f"{'an' if lower[:1] in 'aeiou' else 'a'} {phrase}"


def join_words(items: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def negative_for(target: Target, prompt: str, photo: bool) -> str:
    """Rule 6: the target's negative prompt for `prompt` ("" where the model takes none)."""
    if not target.negative:
        return ""
    terms = [*NEGATIVES.get(target.name, NEGATIVES["sd15"]), *(PHOTO_NEGATIVES if photo else ())]
    used = set(re.findall(r"[a-z0-9]+", prompt.lower()))
    used |= set().union(*(_forms(w) for w in used)) if used else set()
    return ", ".join(t for t in terms if not (set(re.findall(r"[a-z0-9]+", t)) & used))


class RulesExpander:
    """Keywords → a prompt by the rules in this module's docstring. Deterministic, instant, weight-free."""

    name = "rules"

    def describe(self) -> str:
        return "rules (rule-based keyword slots, not a language model; no weights)"

    def expand(self, words: str, target: str | Target, seed: int) -> Expansion:
        text = check_words(words)
        target = get_target(target)
        keywords = split_keywords(text)
        if not keywords:
            raise InvalidInputError(f"no keywords in {text!r}: give a few words separated by commas")
        slots = classify(keywords)
        pick = random.Random(seed)
        lighting_default = pick.choice(DEFAULT_LIGHTING)
        composition = pick.choice(COMPOSITION)
        quality_extra = pick.choice(QUALITY_EXTRA)
        closing = pick.choice(CLOSING_SENTENCES)
        medium_default = [] if slots.medium else [DEFAULT_MEDIUM]
        photo = not slots.medium or any(mentions(m, PHOTO_WORDS) for m in slots.medium)
        notes = ""
        if target.form == "tags":
            prompt, notes = self._tags(target, slots, medium_default, [] if slots.lighting else [lighting_default],
                                       composition, quality_extra)
        else:
            prompt = self._sentences(slots, lighting_default, closing)
            if target.max_chars is not None and len(prompt) > target.max_chars:
                raise InvalidInputError(f"the expanded prompt has {len(prompt)} characters; {target.label} takes at "
                                        f"most {target.max_chars}: use fewer words")
        return Expansion(words=text, prompt=prompt, negative_prompt=negative_for(target, prompt, photo),
                         expander=self.name, target=target.name, seed=seed, notes=notes)

    @staticmethod
    def _tags(target: Target, slots: Slots, medium_default: list[str], lighting_default: list[str],
              composition: str, quality_extra: str) -> tuple[str, str]:
        # Rule 4's order; the defaults (marked False) go, last ones first, when the chunk overflows.
        return fit_tags([
            *((k, True) for k in slots.subject), *((k, True) for k in slots.setting),
            *((k, True) for k in slots.lighting), *((k, False) for k in lighting_default),
            *((k, True) for k in slots.medium), *((k, False) for k in medium_default),
            *((k, True) for k in slots.style), (composition, False),
            *((k, True) for k in slots.quality), *((k, False) for k in QUALITY_TAGS), (quality_extra, False),
        ], target)

    @staticmethod
    def _sentences(slots: Slots, lighting_default: str, closing: str) -> str:
        def words(items: list[str]) -> list[str]:
            return [plain(k) for k in items if plain(k)]

        subject, setting = words(slots.subject), words(slots.setting)
        medium = join_words(words(slots.medium)) if slots.medium else DEFAULT_MEDIUM
        opening = _with_article(medium)
        opening = opening[0].upper() + opening[1:] if opening.startswith(("a ", "an ")) else opening
        if subject:
            first = f"{opening} of {join_words([_with_article(s) for s in subject])}"
            if setting:
                first += f", in a scene with {join_words([_with_article(s) for s in setting])}"
        elif setting:
            first = f"{opening} of {join_words([_with_article(s) for s in setting])}"
        else:
            first = opening
        sentences = [first + "."]
        lighting = words(slots.lighting)
        sentences.append(f"The mood is set by {join_words(lighting)}." if lighting else f"The scene has {lighting_default}.")
        style = words(slots.style)
        if style:
            sentences.append(f"The style is {join_words(style)}.")
        quality = words(slots.quality)
        sentences.append(f"It is {join_words(quality)}." if quality else closing)
        return " ".join(sentences)


def fit_tags(parts: list[tuple[str, bool]], target: Target) -> tuple[str, str]:
    """Tags `(text, keep)` joined with commas; tags not kept are dropped, last first, until the prompt fits in
    the target's CLIP chunk. Kept tags alone longer than the chunk are an InvalidInputError. Also the notes."""
    count, source = token_counter()
    limit = target.clip_tokens or 75
    alone = count(", ".join(k for k, keep in parts if keep))
    if alone > limit:
        raise InvalidInputError(f"the keywords take {alone} CLIP tokens ({source}); {target.label} reads {limit} "
                                "per chunk: use fewer words, or pass them as the prompt without --expand")
    parts = list(parts)
    prompt = ", ".join(k for k, _ in parts)
    while count(prompt) > limit:
        del parts[max(i for i, (_, keep) in enumerate(parts) if not keep)]
        prompt = ", ".join(k for k, _ in parts)
    return prompt, f"{count(prompt)}/{limit} CLIP tokens ({source})"


def mentions(keyword: str, vocabulary: frozenset[str]) -> bool:
    """Whether a word of `keyword` (or its singular) is in `vocabulary`."""
    return any(_forms(w) & vocabulary for w in re.findall(r"[\w\-]+", plain(keyword).lower()))
